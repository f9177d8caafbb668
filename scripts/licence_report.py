#!/usr/bin/env python3
"""Regenerate THIRD_PARTY.md from constraints.txt, the installed distributions and models.json.

    .venv/bin/python scripts/licence_report.py          # rewrite THIRD_PARTY.md
    .venv/bin/python scripts/licence_report.py --check  # exit 1 if stale or anything is flagged

A licence comes from the distribution's own metadata: `License-Expression`, else a short
`License` field, else the trove classifiers; `RECORDED` holds the few we had to read by hand,
each with the reason. Anything GPL/AGPL, non-commercial or unknown is flagged, and so is weak
copyleft (LGPL, MPL) without a reasoned entry in `EXCEPTIONS`. Exit code 1 when anything is
flagged, a model file is missing or its digest changed.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib
import json
import re
import sys
import tomllib
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parent.parent
OUTPUT = "THIRD_PARTY.md"

PERMISSIVE = frozenset(
    {
        "0BSD",
        "Apache-2.0",
        "BSD",
        "BSD-2-Clause",
        "BSD-3-Clause",
        "CNRI-Python",
        "HPND",
        "ISC",
        "MIT",
        "MIT-0",
        "MIT-CMU",
        "PSF-2.0",
        "TCL",
        "Unlicense",
        "Zlib",
    }
)
WEAK_COPYLEFT = frozenset(
    {
        "LGPL-2.1-only",
        "LGPL-2.1-or-later",
        "LGPL-3.0",
        "LGPL-3.0-only",
        "LGPL-3.0-or-later",
        "MPL-1.1",
        "MPL-2.0",
    }
)

_USED_UNMODIFIED = (
    "used unmodified through its public API and installed as its own, replaceable distribution"
)
EXCEPTIONS: dict[str, str] = {
    "psycopg": (
        f"LGPL-3.0: the PostgreSQL driver, {_USED_UNMODIFIED}; the LGPL's conditions for a work "
        "that uses the library (licence notice, user may swap in another build) are met. We "
        "never copy or change its code."
    ),
    "psycopg-binary": (
        f"LGPL-3.0: psycopg's compiled core (bundles libpq, PostgreSQL licence), "
        f"{_USED_UNMODIFIED}."
    ),
    "certifi": (
        f"MPL-2.0 (file-level copyleft): the CA bundle, {_USED_UNMODIFIED}; the MPL only reaches "
        "changes to its own files."
    ),
    "pathspec": f"MPL-2.0 (file-level copyleft): {_USED_UNMODIFIED}.",
    "tqdm": f"MPL-2.0 AND MIT (file-level copyleft): progress bars, {_USED_UNMODIFIED}.",
    "hypothesis": f"MPL-2.0 (file-level copyleft): test-only (property tests), {_USED_UNMODIFIED}.",
    "pyphen": (
        "GPL-2.0+ OR LGPL-2.1+ OR MPL-1.1, taken under MPL-1.1 (file-level copyleft): "
        f"hyphenation for WeasyPrint's PDF reports, {_USED_UNMODIFIED}."
    ),
}

RECORDED: dict[str, tuple[str, str]] = {
    "atheris": (
        "Apache-2.0",
        "no licence in its metadata; the LICENSE file inside the wheel is Apache 2.0",
    ),
    "setuptools": (
        "MIT",
        "the build tool (dev extra, builds the wheel offline); MIT in every release, declared "
        "by classifier in old ones and License-Expression in new ones",
    ),
    "label-studio-sdk": (
        "Apache-2.0",
        "no licence in its metadata; the LICENSE file inside the distribution is Apache 2.0",
    ),
    "kubernetes-validate": (
        "Apache-2.0",
        "metadata says only 'Apache'; the LICENSE file inside the wheel is the Apache License 2.0 "
        "(dev extra: validates deploy/k8s offline)",
    ),
    "opencv-python": (
        "Apache-2.0",
        "scripts/setup.sh uninstalls it (one OpenCV: the headless build stays); same licence "
        "as opencv-python-headless",
    ),
}

_ALIASES = {
    "mit": "MIT",
    "mit license": "MIT",
    "the mit license": "MIT",
    "apache 2.0": "Apache-2.0",
    "apache-2": "Apache-2.0",
    "apache license 2.0": "Apache-2.0",
    "apache license, version 2.0": "Apache-2.0",
    "apache software license": "Apache-2.0",
    "apache license version 2.0": "Apache-2.0",
    "bsd": "BSD",
    "3-clause bsd license": "BSD-3-Clause",
    "bsd 3-clause license": "BSD-3-Clause",
    "new bsd license": "BSD-3-Clause",
    "isc license": "ISC",
    "psfl": "PSF-2.0",
}
_CLASSIFIERS = {
    "MIT License": "MIT",
    "Apache Software License": "Apache-2.0",
    "BSD License": "BSD",
    "Python Software Foundation License": "PSF-2.0",
    "ISC License (ISCL)": "ISC",
    "Mozilla Public License 2.0 (MPL 2.0)": "MPL-2.0",
    "Mozilla Public License 1.1 (MPL 1.1)": "MPL-1.1",
    "GNU Lesser General Public License v3 (LGPLv3)": "LGPL-3.0",
    "GNU General Public License v2 (GPLv2)": "GPL-2.0",
    "GNU General Public License v3 (GPLv3)": "GPL-3.0",
    "GNU Affero General Public License v3": "AGPL-3.0",
}
_FLAG_WORDS = re.compile(r"GPL|non-?commercial|\bNC\b|CC-BY-NC|SSPL|BUSL|UNKNOWN", re.IGNORECASE)
_TOKEN = re.compile(r"[A-Za-z0-9.+-]+")

# System packages installed by scripts/setup.sh (and deploy/Containerfile), from Debian.
DEBIAN = {
    "tesseract-ocr": ("Apache-2.0", "OCR engine, run as a separate program by pytesseract"),
    "tesseract-ocr-eng": ("Apache-2.0", "English model data (see Models)"),
    "libimage-exiftool-perl": (
        "Artistic-1.0-Perl OR GPL-1.0-or-later",
        "exiftool, run as a separate program (subprocess), never linked or modified; we take "
        "it under the Artistic licence; it is not redistributed by this repository",
    ),
    "libpango-1.0-0, libpangoft2-1.0-0": (
        "LGPL-2.0-or-later",
        "text layout for WeasyPrint (PDF reports), shared libraries loaded unmodified",
    ),
    "fonts-dejavu-core": ("Bitstream-Vera AND public domain", "fonts in PDF reports"),
}
# Shared libraries that manylinux wheels carry (`<name>.libs/`); their notices ship in the wheel.
BUNDLED = {
    "opencv-python-headless": (
        "FFmpeg (libavcodec, libavformat, ...; LGPL-2.1-or-later), libvpx, libaom, OpenBLAS, "
        "libgfortran (GPL-3.0 WITH GCC-exception-3.1) and more, as dynamic libraries, unmodified; "
        "notices in its LICENSE-3RD-PARTY.txt"
    ),
    "numpy": (
        "OpenBLAS (BSD-3-Clause) and libgfortran/libquadmath (GPL-3.0 WITH GCC-exception-3.1: "
        "the runtime-library exception allows use by any program)"
    ),
    "psycopg-binary": "libpq (PostgreSQL licence), OpenSSL 3 (Apache-2.0), Kerberos, OpenLDAP, "
    "Cyrus SASL (permissive licences)",
}
SERVICES = {
    "heartexlabs/label-studio (deploy/compose.yaml)": (
        "Apache-2.0",
        "Label Studio Community Edition, its own container; receives redacted images",
    ),
    "postgres (deploy/compose.yaml)": ("PostgreSQL", "the database server, its own container"),
    "rabbitmq (deploy/compose.scale.yaml)": (
        "MPL-2.0",
        "the broker of the scale-out layout, its own container, unmodified; talked to over AMQP",
    ),
    "chrislusf/seaweedfs (deploy/compose.scale.yaml)": (
        "Apache-2.0",
        "one S3-compatible object store per region in the scale-out layout, its own container, "
        "unmodified; talked to over the S3 API (MinIO, AGPL-3.0, is not shipped: only as an "
        "external store an operator runs)",
    ),
    "KEDA CRD schemas (deploy/k8s/schemas/, vendored)": (
        "Apache-2.0",
        "the OpenAPI schemas of KEDA's ScaledObject and TriggerAuthentication (kedacore/keda "
        "config/crd/bases), data only, used by the tests to validate deploy/k8s offline",
    ),
}


@dataclass(frozen=True)
class Dependency:
    name: str
    version: str
    licence: str
    source: str
    role: str
    verdict: str

    @property
    def flagged(self) -> bool:
        return self.verdict.startswith("FLAGGED")


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def read_pins(path: Path) -> list[tuple[str, str]]:
    """`name==version` lines of a constraints file, in file order."""
    pins = []
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.split("#", 1)[0].strip()
        if line:
            name, _, version = line.partition("==")
            pins.append((name.strip(), version.strip()))
    return pins


def _is_expression(text: str) -> bool:
    tokens = [t for t in _TOKEN.findall(text) if t not in {"AND", "OR", "WITH"}]
    return bool(tokens) and all(t in PERMISSIVE | WEAK_COPYLEFT for t in tokens)


def licence_of(name: str) -> tuple[str, str]:
    """(licence expression, where it was read) for an installed distribution."""
    if canonical(name) in RECORDED:
        expression, reason = RECORDED[canonical(name)]
        return expression, f"recorded: {reason}"
    try:
        meta = metadata.metadata(name).json
    except metadata.PackageNotFoundError:
        return "UNKNOWN", "not installed"
    if meta.get("license_expression"):
        return str(meta["license_expression"]).strip(), "License-Expression"
    field = str(meta.get("license") or "").strip()
    if field and "\n" not in field and len(field) <= 40:
        if field.lower() in _ALIASES:
            return _ALIASES[field.lower()], "License"
        if _is_expression(field):
            return field, "License"
    found = []
    for classifier in meta.get("classifier", []):
        parts = [p.strip() for p in classifier.split("::")]
        if parts[0] == "License" and len(parts) > 2:
            found.append(_CLASSIFIERS.get(parts[-1], parts[-1]))
    if found:
        return " OR ".join(sorted(set(found))), "classifier"
    return "UNKNOWN", "no licence in metadata"


def verdict(name: str, expression: str) -> str:
    """permissive | exception (reasoned) | FLAGGED: why."""
    if expression == "UNKNOWN" or not expression:
        return "FLAGGED: unknown licence"
    alternatives = [alt.strip("() ") for alt in re.split(r"\bOR\b", expression)]
    best = "flag"
    for alternative in alternatives:
        tokens = [t for t in _TOKEN.findall(alternative) if t not in {"AND", "WITH"}]
        if all(t in PERMISSIVE for t in tokens):
            return "permissive"
        if all(t in PERMISSIVE | WEAK_COPYLEFT for t in tokens):
            best = "weak"
    if best == "weak" and canonical(name) in EXCEPTIONS:
        return "exception (see below)"
    if best == "weak":
        return "FLAGGED: weak copyleft without a recorded exception"
    if _FLAG_WORDS.search(expression):
        return "FLAGGED: copyleft, non-commercial or unknown"
    return "FLAGGED: not on the permissive allowlist"


def runtime_closure(pyproject: Path, extras: tuple[str, ...] = ()) -> set[str]:
    """Canonical names of every distribution the project needs at run time, plus those the
    named extras of the project (e.g. `dev`) bring, as installed here."""
    project = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]
    queue = [Requirement(spec) for spec in project["dependencies"]]
    for extra in extras:
        queue += [Requirement(spec) for spec in project["optional-dependencies"][extra]]
    seen: set[str] = set()
    while queue:
        req = queue.pop()
        name = canonical(req.name)
        if name in seen:
            continue
        seen.add(name)
        try:
            requires = metadata.requires(req.name) or []
        except metadata.PackageNotFoundError:
            continue
        for spec in requires:
            child = Requirement(spec)
            extras = sorted(req.extras) or [""]
            if child.marker is None or any(child.marker.evaluate({"extra": e}) for e in extras):
                queue.append(child)
    return seen


def collect(root: Path) -> list[Dependency]:
    runtime = runtime_closure(root / "pyproject.toml")
    rows = []
    for name, version in read_pins(root / "constraints.txt"):
        expression, source = licence_of(name)
        role = "runtime" if canonical(name) in runtime else "dev / tooling"
        rows.append(Dependency(name, version, expression, source, role, verdict(name, expression)))
    return sorted(rows, key=lambda d: canonical(d.name))


def load_models(root: Path) -> list[dict[str, Any]]:
    models: list[dict[str, Any]] = json.loads((root / "models.json").read_text("utf-8"))["models"]
    return models


def model_file(entry: dict[str, Any]) -> Path:
    """Where the model file is on this machine (inside its installed package)."""
    if entry["package_kind"] == "debian":
        return Path(entry["path"])
    if entry["package_kind"] == "repo":  # shipped in this project (redaction/models/)
        return ROOT / entry["path"]
    dist = metadata.distribution(entry["package"])
    return Path(str(dist.locate_file(entry["path"])))


def check_model(entry: dict[str, Any]) -> list[str]:
    """Problems with one manifest entry on this machine; empty when the file is as recorded."""
    label = f"model {entry['name']}"
    try:
        data = model_file(entry).read_bytes()
    except (OSError, metadata.PackageNotFoundError) as exc:
        return [f"{label}: cannot read {entry['path']}: {exc}"]
    problems = []
    if hashlib.sha256(data).hexdigest() != entry["sha256"]:
        problems.append(f"{label}: sha256 of {entry['path']} differs from models.json")
    if entry["package_kind"] == "pypi" and metadata.version(entry["package"]) != entry["version"]:
        problems.append(f"{label}: {entry['package']} is not version {entry['version']}")
    embedded = entry.get("embedded")
    if embedded:
        module = entry["path"].removesuffix(".py").replace("/", ".")
        blob = getattr(importlib.import_module(module), embedded["attribute"])
        if hashlib.sha256(blob).hexdigest() != embedded["sha256"]:
            problems.append(f"{label}: embedded {embedded['attribute']} digest differs")
    return problems


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows]
    return lines


def render(deps: list[Dependency], models: list[dict[str, Any]]) -> str:
    out = [
        "# Third-party software, models and data",
        "",
        "Generated by `scripts/licence_report.py` from `constraints.txt`, the installed",
        "distributions' metadata and `models.json`; do not edit by hand: run",
        "`.venv/bin/python scripts/licence_report.py` after changing a pin or a model.",
        "The project itself is Apache-2.0.",
        "",
        "## Policy",
        "",
        "Allowed without comment: " + ", ".join(sorted(PERMISSIVE)) + ".",
        "(`BSD`: a BSD licence whose variant the metadata does not state.)",
        "Weak copyleft (" + ", ".join(sorted(WEAK_COPYLEFT)) + ")",
        "only with a reasoned exception below. GPL, AGPL, non-commercial and unknown licences",
        "are flagged and fail `tests/test_licences.py`.",
        "",
        "## Models",
        "",
        "Every model ships inside an installed package; nothing is downloaded at run time. The",
        "sha256 is that of the file as installed (`tests/test_licences.py` checks it).",
        "",
    ]
    out += _table(
        ["model", "package", "version", "file", "sha256", "licence", "source"],
        [
            [
                m["name"],
                m["package"],
                m["version"],
                f"`{m['path']}`",
                f"`{m['sha256']}`"
                + (f" (embedded ONNX `{m['embedded']['sha256']}`)" if m.get("embedded") else ""),
                m["licence"],
                m["source"],
            ]
            for m in models
        ],
    )
    out += ["", "## Python distributions (every pin in constraints.txt)", ""]
    out += _table(
        ["distribution", "version", "licence", "read from", "role", "verdict"],
        [[d.name, d.version, d.licence, d.source, d.role, d.verdict] for d in deps],
    )
    out += ["", "## Licence exceptions", ""]
    out += [f"- **{name}**: {reason}" for name, reason in sorted(EXCEPTIONS.items())]
    out += ["", "## Native libraries inside wheels", ""]
    out += [f"- **{name}**: {note}" for name, note in BUNDLED.items()]
    out += ["", "## Debian packages (scripts/setup.sh, deploy/Containerfile)", ""]
    out += _table(["package", "licence", "use"], [[k, *v] for k, v in DEBIAN.items()])
    out += ["", "## Services next to the gateway (not part of this repository's code)", ""]
    out += _table(["image", "licence", "use"], [[k, *v] for k, v in SERVICES.items()])
    out += [
        "",
        "## Sample data",
        "",
        "The demo photos in `gateway/demo_photos/` carry their own sources and licences in",
        "[`gateway/demo_photos/ATTRIBUTION.md`](gateway/demo_photos/ATTRIBUTION.md).",
        "",
    ]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--check", action="store_true", help="do not write; fail if stale")
    args = parser.parse_args(argv)
    deps = collect(ROOT)
    models = load_models(ROOT)
    problems = [f"{d.name} {d.version}: {d.licence}: {d.verdict}" for d in deps if d.flagged]
    problems += [p for m in models for p in check_model(m)]
    text = render(deps, models)
    target = ROOT / OUTPUT
    if args.check:
        if not target.exists() or target.read_text(encoding="utf-8") != text:
            problems.append(f"{OUTPUT} is stale: run scripts/licence_report.py")
    else:
        target.write_text(text, encoding="utf-8")
    for problem in problems:
        sys.stderr.write(f"licence report: {problem}\n")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
