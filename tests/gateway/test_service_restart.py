"""kill -9 of the service: the test plays systemd/Kubernetes, starting `privacy-gateway
serve` as a subprocess (real detectors, real isolated redaction worker), killing it with
SIGKILL while a job runs, and starting it again. The orphaned job is taken again as soon as
its lease runs out, every image is released once, and the JSON logs at INFO are there and
hold none of the run's secrets."""

from __future__ import annotations

import base64
import json
import os
import signal
import socket
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from sqlmodel import col, select

from gateway.core.context import GatewayContext
from gateway.core.db import transaction
from gateway.core.models import Asset, AssetState, Job, JobState, LineageRecord, Role
from gateway.core.settings import Settings
from gateway.datasets import DatasetSpec, create_dataset
from gateway.lineage import Actor
from tests.conftest import DATASET_SPEC, PHOTOS
from tests.gateway.faults import wait_for
from tests.gateway.test_api import make_key

pytestmark = [pytest.mark.integration, pytest.mark.timeout(420)]
REPO = Path(__file__).resolve().parents[2]
LEASE = 15.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _prepare(settings: Settings) -> tuple[str, str]:
    ctx = GatewayContext.open(settings)
    try:
        with transaction(ctx.engine) as s:
            dataset = create_dataset(
                s, ctx, DatasetSpec.model_validate(DATASET_SPEC), actor=Actor("cli", "t")
            )
        return dataset.name, make_key(ctx, Role.INGEST)
    finally:
        ctx.close()


def _ready(base: str) -> bool:
    try:
        return httpx.get(f"{base}/health/ready", timeout=5).status_code == 200
    except httpx.HTTPError:
        return False


def test_kill_9_and_restart_loses_and_duplicates_nothing(tmp_path) -> None:
    master_key = base64.b64encode(os.urandom(32)).decode()
    settings = Settings(data_dir=tmp_path / "data", master_key=master_key, workers=1)
    dataset, token = _prepare(settings)
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "GATEWAY_DATA_DIR": str(settings.data_dir),
        "GATEWAY_MASTER_KEY": master_key,
        "GATEWAY_WORKERS": "1",
        "GATEWAY_JOB_LEASE_SECONDS": str(LEASE),
        "GATEWAY_RETENTION_INTERVAL_SECONDS": "0",
        "GATEWAY_ANNOTATION_PULL_INTERVAL_SECONDS": "0",
        "GATEWAY_REVIEW_PULL_INTERVAL_SECONDS": "0",
    }
    env.pop("GATEWAY_DATABASE_URL", None)
    logs = tmp_path / "service.log"

    def start() -> subprocess.Popen[bytes]:
        with logs.open("ab") as sink:
            return subprocess.Popen(
                [sys.executable, "-m", "gateway", "serve", "--port", str(port)],
                env=env,
                stdout=sink,
                stderr=sink,
                cwd=tmp_path,
            )

    engine = GatewayContext.open(settings).engine
    service = start()
    try:
        wait_for(lambda: _ready(base), deadline=120, what="the service to be ready")
        photos = sorted(PHOTOS.glob("masks_*.jpg"), key=lambda p: p.stat().st_size)[:2]
        files = [("files", (p.name, p.read_bytes(), "image/jpeg")) for p in photos]
        r = httpx.post(
            f"{base}/v1/datasets/{dataset}/assets",
            headers={"Authorization": f"Bearer {token}"},
            files=files,
            timeout=60,
        )
        assert r.status_code == 201, r.text
        assert r.headers["x-request-id"]
        ids = [row["asset_id"] for row in r.json()["results"]]

        def running() -> list[Job]:
            with transaction(engine) as s:
                return list(s.exec(select(Job).where(Job.state == JobState.RUNNING)).all())

        wait_for(running, deadline=120, what="a job to be running")
        os.kill(service.pid, signal.SIGKILL)
        service.wait(30)
        killed_at = datetime.now(UTC)
        (orphan,) = running()  # the dead process held it: nothing else will finish it
        assert f":{service.pid}:" in (orphan.worker or "")
        assert not _ready(base)  # down is down

        service = start()  # the supervisor (systemd, Kubernetes) restarts it
        wait_for(lambda: _ready(base), deadline=120, what="the restarted service")
        ready_at = datetime.now(UTC)

        def all_released() -> bool:
            with transaction(engine) as s:
                assets = [s.get(Asset, i) for i in ids]
            return all(a is not None and a.state == AssetState.RELEASED for a in assets)

        wait_for(all_released, deadline=240, what="every image released")
        with transaction(engine) as s:
            jobs = s.exec(select(Job).order_by(col(Job.id))).all()
            assert sorted(j.asset_id for j in jobs) == sorted(ids)
            assert {j.state for j in jobs} == {JobState.DONE}
            retaken = s.get(Job, orphan.id)
            assert retaken is not None and retaken.attempts == 2
            for asset_id in ids:
                released = s.exec(
                    select(LineageRecord).where(
                        LineageRecord.entity_id == asset_id,
                        LineageRecord.action == "asset.released",
                    )
                ).all()
                assert len(released) == 1
        assert orphan.lease_expires_at is not None
        lease_end = orphan.lease_expires_at.replace(tzinfo=UTC)
        assert (lease_end - killed_at).total_seconds() <= LEASE
    finally:
        service.send_signal(signal.SIGTERM)
        service.wait(60)
        engine.dispose()

    lines = [json.loads(line) for line in logs.read_text().splitlines() if line.startswith("{")]
    assert any(e["msg"] == "gateway started" and e["level"] == "INFO" for e in lines)
    (taken,) = [
        e
        for e in lines
        if e["msg"] == "job lease expired; taking it again" and e["job_id"] == orphan.id
    ]
    taken_at = datetime.fromisoformat(taken["ts"])
    # taken again within seconds of the lease running out (or of the restart)
    assert (taken_at - max(lease_end, ready_at)).total_seconds() < 5
    assert any(e.get("request_id") for e in lines if e["logger"] == "gateway.http")
    text = logs.read_text()
    for secret in (master_key, token, token.split(".")[-1]):
        assert secret not in text
