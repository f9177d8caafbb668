"""`privacy-gateway verify BUNDLE` needs no database: checking a bundle offline loads the lineage
format package and the CLI framework, never SQLModel, SQLAlchemy, FastAPI or the service.
Each probe runs in a fresh interpreter and reports what `sys.modules` holds at exit."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from gateway.core.db import transaction
from gateway.lineage import Actor, append
from gateway.lineage.bundle import BundleFilter, export_bundle
from gateway.lineage.service import check_export_residency
from gateway.lineage.signing import ensure_signing_key

ROOT = Path(__file__).resolve().parents[2]
FORBIDDEN = (
    "sqlmodel",
    "sqlalchemy",
    "fastapi",
    "starlette",
    "alembic",
    "gateway.service",
    "gateway.main",
    "gateway.core.db",
    "gateway.core.models",
    "gateway.lineage.ledger",
)
# the format package itself: the standard library, cryptography, rfc8785 and gateway.core.errors
FORMAT_MAY_LOAD = ("gateway", "gateway.core", "gateway.core.errors", "gateway.lineage")

REPORT = (
    "import atexit, json, sys\n"
    "atexit.register(lambda: print(json.dumps(sorted(sys.modules)), file=sys.stderr))\n"
)


def _modules(code: str, *argv: str) -> tuple[subprocess.CompletedProcess[str], list[str]]:
    done = subprocess.run(
        [sys.executable, "-c", REPORT + code, *argv],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
        check=False,
    )
    return done, json.loads(done.stderr.strip().splitlines()[-1])


def _loaded(modules: list[str], names: tuple[str, ...]) -> list[str]:
    return [m for m in modules if any(m == n or m.startswith(n + ".") for n in names)]


def test_the_format_package_imports_nothing_of_the_database_or_the_service() -> None:
    code = (
        "import gateway.lineage.format.verify, gateway.lineage.format.checkpoint\n"
        "import gateway.lineage.format.records\n"
    )
    done, modules = _modules(code)
    assert done.returncode == 0, done.stderr
    assert _loaded(modules, FORBIDDEN) == []
    gateway_modules = [m for m in modules if m == "gateway" or m.startswith("gateway.")]
    outside = [
        m
        for m in gateway_modules
        if m not in FORMAT_MAY_LOAD and not m.startswith("gateway.lineage.format")
    ]
    assert outside == []
    assert "pydantic" not in modules


@pytest.mark.db
def test_verify_bundle_on_the_command_line_loads_no_database_code(ctx: Any, tmp_path: Path) -> None:
    with transaction(ctx.engine) as s:
        for i in range(5):
            append(
                s,
                action="test.event",
                entity_type="asset",
                entity_id=f"e{i}",
                actor=Actor("system", "test"),
                now=ctx.clock(),
                region="eu-de",
            )
    path = tmp_path / "bundle.jsonl"
    with transaction(ctx.engine) as s:
        cleared = check_export_residency(
            ctx, s, BundleFilter(), target_region="eu-de", actor=Actor("system", "test")
        )
        export_bundle(ctx, s, path, BundleFilter(), clearances=cleared, to_region="eu-de")
        fp = ensure_signing_key(ctx, s).fingerprint
    code = "import sys\nfrom gateway.cli import main\nmain(sys.argv[1:])\n"
    done, modules = _modules(code, "verify", str(path), "--fingerprint", fp)
    assert done.returncode == 0, done.stderr
    assert "lineage bundle intact: 5 records" in done.stdout
    assert _loaded(modules, FORBIDDEN) == []
    assert "gateway.lineage.format.verify" in modules  # the probe did run the verifier

    text = path.read_text()
    assert text.count("test.event") == 5
    path.write_text(text.replace("test.event", "test.evenT", 1))  # record 1's payload
    done, modules = _modules(code, "verify", str(path), "--fingerprint", fp)
    assert done.returncode == 1
    assert "[lineage-bundle-invalid]" in done.stderr
    assert "record seq 1 does not hash to its signed value: modified" in done.stderr
    assert _loaded(modules, FORBIDDEN) == []


def test_the_other_commands_are_not_loaded_for_verify() -> None:
    code = "import sys\nfrom gateway.cli import main\nmain(sys.argv[1:])\n"
    done, modules = _modules(code, "verify", "--help")
    assert done.returncode == 0, done.stderr
    assert "Usage: privacy-gateway verify [OPTIONS] [bundle]" in done.stdout
    assert _loaded(modules, ("gateway.cli.root", "gateway.cli.policies", "gateway.cli.sync")) == []
