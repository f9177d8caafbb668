"""The CLI as a user runs it: checkpoint, export, publish the key, verify offline, tamper."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.db]


def _cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gateway", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture
def env(settings) -> dict[str, str]:
    assert settings.master_key is not None
    return os.environ | {
        "GATEWAY_DATA_DIR": str(settings.data_dir),
        "GATEWAY_DATABASE_URL": settings.resolved_database_url,
        "GATEWAY_MASTER_KEY": settings.master_key.get_secret_value(),
        "COLUMNS": "200",
    }


def test_export_verify_tamper_and_residency(env, tmp_path: Path) -> None:
    assert _cli(env, "init").returncode == 0
    for label in ("a", "b", "c"):
        assert _cli(env, "api-keys", "create", "--role", "ml", "--label", label).returncode == 0
    assert _cli(env, "lineage", "checkpoint").returncode == 0
    assert _cli(env, "lineage", "rotate-key").returncode == 0
    pem = tmp_path / "gateway.pem"
    shown = _cli(env, "lineage", "public-key", "--output", str(pem))
    assert shown.returncode == 0 and "BEGIN PUBLIC KEY" in pem.read_text()
    bundle = tmp_path / "lineage.jsonl"
    done = _cli(env, "lineage", "export", "--output", str(bundle))
    assert done.returncode == 0, done.stderr

    ok = _cli(env, "verify", str(bundle), "--trusted-key", str(pem))
    assert ok.returncode == 0, ok.stderr
    assert "intact" in ok.stdout and "anchored" in ok.stdout
    loose = _cli(env, "verify", str(bundle))
    assert loose.returncode == 0 and "WARNING: no trusted key" in loose.stderr

    lines = bundle.read_text().splitlines()
    idx = next(i for i, x in enumerate(lines) if '"kind":"record"' in x and '"seq":2,' in x)
    lines[idx] = lines[idx].replace("api-key.created", "api-key.revoked")
    (tampered := tmp_path / "t.jsonl").write_text("\n".join(lines) + "\n")
    bad = _cli(env, "verify", str(tampered), "--trusted-key", str(pem))
    assert bad.returncode != 0
    assert "record seq 2" in bad.stderr and "modified" in bad.stderr

    live = _cli(env, "verify")
    assert live.returncode == 0 and "signed checkpoints in the database" in live.stdout

    for fmt, name in (("openlineage", "ol.jsonl"), ("prov", "prov.json")):
        res = _cli(env, "lineage", "export", "--format", fmt, "--output", str(tmp_path / name))
        assert res.returncode == 0, res.stderr
    events = [json.loads(x) for x in (tmp_path / "ol.jsonl").read_text().splitlines()]
    assert events and events[0]["eventType"] == "COMPLETE"
    assert "lpg_lineage" in events[0]["run"]["facets"]
    prov = json.loads((tmp_path / "prov.json").read_text())
    assert prov["activity"] and prov["wasAssociatedWith"]


def test_export_follows_the_datasets_residency_policy(env, tmp_path: Path) -> None:
    assert _cli(env, "init").returncode == 0
    made = _cli(
        env,
        "datasets",
        "create",
        "street",
        "--purpose",
        "pedestrian detection",
        "--controller",
        "Example Lab",
        "--legal-basis",
        "consent",
        "--subjects",
        "passers-by",
        "--data-category",
        "faces",
        "--label",
        "person:box",
    )
    assert made.returncode == 0, made.stderr
    out = tmp_path / "x.jsonl"
    res = _cli(env, "lineage", "export", "--output", str(out), "--target-region", "us-east")
    assert res.returncode != 0, res.stdout
    assert "residency" in res.stderr
    assert not out.exists()
    ok = _cli(env, "lineage", "export", "--output", str(out), "--dataset", "street")
    assert ok.returncode == 0, ok.stderr
    assert _cli(env, "verify", str(out)).returncode == 0


def test_live_verify_fails_on_database_edits(env, tmp_path: Path) -> None:
    """The review's findings, as a user meets them: an edited `action` column, and every
    checkpoint deleted. Typed one-line errors, no traceback."""
    from sqlalchemy import create_engine, text

    assert _cli(env, "init").returncode == 0
    pin = tmp_path / "officer" / "checkpoints.jsonl"  # kept outside the data directory
    made = _cli(env, "lineage", "checkpoint", "--output", str(pin))
    assert made.returncode == 0, made.stderr
    engine = create_engine(env["GATEWAY_DATABASE_URL"])
    with engine.begin() as conn:  # the officer pins the fingerprint `lineage public-key` prints
        fp = conn.execute(text("SELECT fingerprint FROM lineagesigningkey")).scalar_one()
    ok = _cli(env, "verify", "--against", str(pin), "--fingerprint", fp, "--strict")
    assert ok.returncode == 0, ok.stderr
    assert "anchored to trusted key" in ok.stdout and "0 records after it" in ok.stdout

    with engine.begin() as conn:
        action = conn.execute(text("SELECT action FROM lineagerecord WHERE seq = 1")).scalar()
        conn.execute(text("UPDATE lineagerecord SET action = 'api-key.revoked' WHERE seq = 1"))
    bad = _cli(env, "verify")  # the gateway's own key, proven with the master key
    assert bad.returncode == 1 and "Traceback" not in bad.stderr
    assert "[lineage-tampered]" in bad.stderr and "column action" in bad.stderr

    with engine.begin() as conn:
        conn.execute(text("UPDATE lineagerecord SET action = :a WHERE seq = 1"), {"a": action})
        conn.execute(text("DELETE FROM lineagecheckpoint"))
    engine.dispose()
    gone = _cli(env, "verify")
    assert gone.returncode == 1 and "[lineage-not-anchored]" in gone.stderr, gone.stderr
    pinned = _cli(env, "verify", "--against", str(pin), "--fingerprint", fp)
    assert pinned.returncode == 1 and "missing from the database" in pinned.stderr
