"""Folder import from the CLI: progress, resumable after SIGKILL, idempotent."""

from __future__ import annotations

import base64
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from tests.gateway.bad_inputs import good_jpeg

pytestmark = [pytest.mark.db, pytest.mark.integration]


def _cli(env: dict[str, str], *args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "gateway", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def _count(url: str) -> int:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(text("SELECT count(*) FROM asset")).scalar_one())
    finally:
        engine.dispose()


def _env(tmp_path: Path, database_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    env |= {
        "GATEWAY_DATA_DIR": str(tmp_path / "data"),
        "GATEWAY_DATABASE_URL": database_url,
        "GATEWAY_MASTER_KEY": base64.b64encode(os.urandom(32)).decode(),
    }
    return env


@pytest.mark.timeout(240)
def test_sigkill_halfway_then_rerun_gives_every_image_exactly_once(
    tmp_path: Path, database_url: str
) -> None:
    folder = tmp_path / "photos"
    for i in range(220):
        sub = folder / f"batch{i % 3}"
        sub.mkdir(parents=True, exist_ok=True)
        (sub / f"img{i:03d}.jpg").write_bytes(good_jpeg(i, size=(120, 160)))
    env = _env(tmp_path, database_url)
    # commands never migrate on their own: `init` creates the schema first
    init = subprocess.run(
        [sys.executable, "-m", "gateway", "init"], env=env, capture_output=True, check=False
    )
    assert init.returncode == 0, init.stderr.decode()
    created = subprocess.run(
        [
            sys.executable,
            "-m",
            "gateway",
            "datasets",
            "create",
            "street",
            "--purpose",
            "Pedestrian detection research data.",
            "--controller",
            "Lab",
            "--legal-basis",
            "legitimate_interests",
            "--subjects",
            "passers-by",
            "--data-category",
            "facial images",
            "--label",
            "person:box",
        ],
        env=env,
        capture_output=True,
        check=False,
    )
    assert created.returncode == 0, created.stderr.decode()
    log = tmp_path / "first-run.log"
    with log.open("wb") as sink:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gateway",
                "ingest",
                str(folder),
                "--dataset",
                "street",
                "--no-process",
            ],
            env=env,
            stdout=sink,
            stderr=sink,
        )
        deadline = time.monotonic() + 120
        # wait for a condition (some assets committed), not for a time; then kill mid-run
        while _count(database_url) < 40:
            assert proc.poll() is None, log.read_text()
            assert time.monotonic() < deadline
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    halfway = _count(database_url)
    assert 40 <= halfway < 220
    rerun = _cli(env, "ingest", str(folder), "--dataset", "street", "--no-process")
    _, err = rerun.communicate(timeout=180)
    assert rerun.returncode == 0, err.decode()
    assert "importing" in err.decode()  # the progress bar
    assert _count(database_url) == 220
    again = _cli(env, "ingest", str(folder), "--dataset", "street", "--no-process")
    out, err = again.communicate(timeout=180)
    assert again.returncode == 0
    assert "imported 0 new, 220 already present" in out.decode()
    assert _count(database_url) == 220
    # the live check needs a signed checkpoint (an unsigned ledger anchors nothing)
    sign = [sys.executable, "-m", "gateway", "lineage", "checkpoint"]
    subprocess.run(sign, env=env, capture_output=True, check=True)
    verify = subprocess.run(
        [sys.executable, "-m", "gateway", "verify"], env=env, capture_output=True, check=False
    )
    assert verify.returncode == 0, verify.stderr.decode()
