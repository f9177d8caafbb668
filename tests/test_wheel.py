"""A wheel built from the repository carries its data files, installs into a fresh virtual
environment and runs `privacy-gateway demo` there, far from the source tree.

Offline by construction: the wheel is built without build isolation (setuptools comes with the
`dev` extra) and installed with --no-index; the fresh environment sees the already-installed
third-party distributions through a .pth line (the editable install of the project itself is
not activated there: .pth files are processed only in site directories), so the project code
that runs is the wheel's.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parent.parent
SOURCES = ("pyproject.toml", "README.md", "LICENSE", "gateway", "redaction", "ml_backend")
DATA_FILES = (
    "gateway/policy/regions.yaml",
    "gateway/policies/default.yaml",
    "gateway/policies/redaction-default.yaml",
    "gateway/policies/schema/policy.schema.json",
    "gateway/demo_photos/ATTRIBUTION.md",
    "gateway/reports/templates/report.html.j2",
    "gateway/reports/schema.json",
    "gateway/migrations/env.py",
    "gateway/migrations/script.py.mako",
    "redaction/models/centerface.onnx",
    "redaction/models/centerface-int8.onnx",
    "redaction/models/LICENSE-centerface.txt",
    "ml_backend/models/nanodet-m-416.onnx",
    "ml_backend/models/ssd-mobilenetv2-oidv4.onnx",
    "ml_backend/models/LICENSE-nanodet.txt",
    "ml_backend/models/LICENSE-ssd-oidv4.txt",
)


def _run(*args: str | Path, cwd: Path, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(
        [str(a) for a in args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=540,
        check=False,
    )
    assert done.returncode == 0, f"{args}: {done.stdout[-2000:]}\n{done.stderr[-4000:]}"
    return done.stdout


def _build_wheel(tmp_path: Path) -> Path:
    source = tmp_path / "source"  # a clean copy: no stale build/ or egg-info from the checkout
    source.mkdir()
    for name in SOURCES:
        path = ROOT / name
        if path.is_dir():
            ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")
            shutil.copytree(path, source / name, ignore=ignore)
        else:
            shutil.copy2(path, source / name)
    dist = tmp_path / "dist"
    pip = (sys.executable, "-m", "pip")
    _run(
        *pip,
        "wheel",
        "--no-deps",
        "--no-build-isolation",
        "--no-index",
        "-w",
        dist,
        source,
        cwd=tmp_path,
    )
    (wheel,) = dist.glob("*.whl")
    return wheel


@pytest.mark.timeout(900)
def test_wheel_installs_into_a_fresh_venv_and_runs_the_demo(tmp_path: Path) -> None:
    wheel = _build_wheel(tmp_path)
    names = set(zipfile.ZipFile(wheel).namelist())
    assert [f for f in DATA_FILES if f not in names] == []
    assert not any(n.startswith(("tests/", "bench/")) for n in names)

    venv = tmp_path / "venv"
    _run(sys.executable, "-m", "venv", "--without-pip", venv, cwd=tmp_path)
    python = venv / "bin" / "python"
    site = Path(
        _run(
            python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])", cwd=tmp_path
        ).strip()
    )
    here = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    (site / "installed_dependencies.pth").write_text("\n".join(sorted(here)) + "\n")
    pip = (sys.executable, "-m", "pip", "--python", python)
    _run(*pip, "install", "--no-deps", "--no-index", wheel, cwd=tmp_path)

    env = {k: v for k, v in os.environ.items() if not k.startswith(("GATEWAY_", "PYTHON"))}
    env["GATEWAY_DATA_DIR"] = str(tmp_path / "data")
    where = _run(
        python,
        "-c",
        "import gateway, redaction; print(gateway.__file__, redaction.__file__)",
        cwd=tmp_path,
        env=env,
    )
    assert all(p.startswith(str(site)) for p in where.split()), where

    cli = venv / "bin" / "privacy-gateway"
    assert _run(cli, "--version", cwd=tmp_path, env=env).strip() == "privacy-gateway 0.1.0"
    shipped = site / "gateway" / "policies"
    validated = _run(
        cli,
        "policies",
        "validate",
        shipped / "default.yaml",
        shipped / "redaction-default.yaml",
        cwd=tmp_path,
        env=env,
    )
    assert "default.yaml" in validated and "redaction-default.yaml" in validated
    demo = _run(cli, "demo", "--data-dir", tmp_path / "demo", cwd=tmp_path, env=env)
    assert "chain verified" in demo
    assert "newest signed tree head" in demo  # the demo signs a checkpoint and verifies live
    live = _run(
        cli, "verify", cwd=tmp_path, env={**env, "GATEWAY_DATA_DIR": str(tmp_path / "demo")}
    )
    assert "lineage chain intact" in live
    assert (tmp_path / "demo" / "governance-report.json").is_file()
