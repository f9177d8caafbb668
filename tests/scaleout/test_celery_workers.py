"""The broker engine end to end: real RabbitMQ, real `privacy-gateway worker` and `scheduler`
processes, the real redaction engine. Waits are on conditions, never timed sleeps."""

from __future__ import annotations

import json
import signal
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlmodel import col, select

from gateway.core.clock import utc_now
from gateway.core.db import transaction
from gateway.core.models import Asset, AssetState, Job, JobState, LineageRecord
from gateway.ingest import Upload, ingest_upload
from gateway.lineage import Action, Actor
from gateway.lineage.ledger import drain
from gateway.main import create_app
from gateway.scaleout.broker import celery_app
from gateway.scaleout.relay import CeleryPublisher, dispatch
from gateway.vocabulary import Role
from tests.conftest import PHOTOS
from tests.gateway.test_api import auth, make_key
from tests.scaleout.helpers import (
    delete_queues,
    free_port,
    gateway_env,
    kill_group,
    process,
    wait_for,
    with_broker,
)

pytestmark = [pytest.mark.db, pytest.mark.integration, pytest.mark.timeout(240)]
DASHCAM = sorted(PHOTOS.glob("dashcam_*.jpg"))[:2]  # 1280x720: seconds each, time to kill
SMALL = sorted(PHOTOS.glob("masks_*.jpg"))[0]


@pytest.fixture
def live(ctx):
    """The test's context on the wall clock (the worker processes use it too), a broker with
    queues of its own, short leases so a killed worker's job comes back within seconds."""
    ctx.clock = utc_now
    ctx.settings = with_broker(
        ctx.settings,
        job_lease_seconds=3.0,
        job_heartbeat_seconds=0.5,
        relay_interval_seconds=0.5,
        relay_republish_seconds=2.0,
    )
    yield ctx
    delete_queues(ctx.settings.broker_queue_prefix)


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def _jobs(ctx) -> list[Job]:
    with transaction(ctx.engine) as s:
        return list(s.exec(select(Job).order_by(col(Job.id))).all())


def _states(ctx) -> dict[str, AssetState]:
    with transaction(ctx.engine) as s:
        return {a.id: a.state for a in s.exec(select(Asset)).all()}


def _actions(ctx, action: str) -> list[dict]:
    drain(ctx.engine)
    with transaction(ctx.engine) as s:
        rows = s.exec(select(LineageRecord).where(LineageRecord.action == action)).all()
        return [json.loads(r.payload) for r in rows]


def test_upload_is_redacted_on_a_celery_worker_and_released(live, dataset, tmp_path: Path):
    ctx = live
    token = make_key(ctx, Role.INGEST, scope=[dataset.id])
    app = create_app(ctx.settings, ctx=ctx)
    port = free_port()
    argv = ["worker", "--port", str(port)]
    worker = process(argv, env=gateway_env(ctx.settings), log=tmp_path / "worker.log")
    with TestClient(app) as client, worker:
        probe = f"http://127.0.0.1:{port}"
        wait_for(lambda: _answers(f"{probe}/health/ready"), timeout=60, what="worker ready")
        # with a broker, the API process runs no job worker and no periodic work
        assert [loop.name for loop in app.state.supervisor.loops] == ["broker-dispatch"]
        ready = client.get("/health/ready")
        assert ready.status_code == 200, ready.text
        photo = SMALL
        files = [("files", (photo.name, photo.read_bytes(), "image/jpeg"))]
        r = client.post(f"/v1/datasets/{dataset.id}/assets", files=files, headers=auth(token))
        assert r.status_code == 201, r.text
        asset_id = r.json()["results"][0]["asset_id"]
        wait_for(
            lambda: _states(ctx)[asset_id] in (AssetState.RELEASED, AssetState.QUARANTINED),
            timeout=150,
            what="the Celery worker to redact the upload",
        )
        metrics = httpx.get(f"{probe}/metrics", timeout=5).text
        assert 'gateway_queue_depth{state="done"} 1.0' in metrics
    assert _states(ctx)[asset_id] == AssetState.RELEASED, (tmp_path / "worker.log").read_text()
    [job] = _jobs(ctx)
    assert job.state == JobState.DONE and job.attempts == 1
    assert job.queue == f"{ctx.settings.broker_queue_prefix}redact.eu-de"
    assert job.worker is not None and job.worker.endswith(":eu-de")
    with transaction(ctx.engine) as s:
        asset = s.get(Asset, asset_id)
        assert asset is not None and asset.redacted_blob is not None
    assert ctx.store.get(asset.redacted_blob)[:2] == b"\xff\xd8"  # a JPEG, written once
    [released] = _actions(ctx, "asset.released")
    assert released["region"] == "eu-de"


def test_kill_9_of_a_worker_mid_job_loses_and_duplicates_nothing(live, dataset, tmp_path: Path):
    ctx = live
    ids = []
    for i, photo in enumerate(DASHCAM):
        with transaction(ctx.engine) as s:
            out = ingest_upload(
                s, ctx, dataset, Upload(f"{i}.jpg", photo.read_bytes()), actor=Actor("cli", "t")
            )
        ids.append(out.asset_id)
    assert dispatch(ctx, CeleryPublisher(celery_app(ctx.settings))) == len(ids)
    env = gateway_env(ctx.settings, GATEWAY_RETENTION_INTERVAL_SECONDS="0.5")
    with process(["worker", "--port", "0"], env=env, log=tmp_path / "a.log") as a:
        mine = f":{a.pid}:"

        def running_on_a() -> Job | None:
            return next(
                (j for j in _jobs(ctx) if j.state == JobState.RUNNING and mine in (j.worker or "")),
                None,
            )

        victim = wait_for(running_on_a, timeout=120, what="worker A to start a job")
        kill_group(a, signal.SIGKILL)  # the worker and its redaction process, mid-image
    with transaction(ctx.engine) as s:
        killed = s.get(Job, victim.id)
        assert killed is not None and killed.state == JobState.RUNNING  # it died holding it
    with (
        process(["worker", "--port", "0"], env=env, log=tmp_path / "b.log"),
        process(["scheduler"], env=env, log=tmp_path / "scheduler.log"),
    ):
        wait_for(
            lambda: all(j.state in (JobState.DONE, JobState.FAILED) for j in _jobs(ctx)),
            timeout=150,
            what="worker B to finish every job (the killed one after its lease ran out)",
        )
        with transaction(ctx.engine) as s:  # 31 days old: the originals are due
            for asset in s.exec(select(Asset)).all():
                asset.created_at = utc_now() - timedelta(days=31)
                s.add(asset)
        wait_for(
            lambda: len(_actions(ctx, Action.ASSET_ORIGINAL_DELETED)) == len(ids),
            timeout=60,
            what="the scheduler to send retention and worker B to run it",
        )
    # the scheduler only sent it: the deletion ran as a task on worker B, in its region
    assert "deleted-" in (tmp_path / "b.log").read_text()
    deleted = _actions(ctx, Action.ASSET_ORIGINAL_DELETED)
    assert sorted(r["entity"]["id"] for r in deleted) == sorted(ids)  # once each
    assert {r["region"] for r in deleted} == {"eu-de"}
    jobs = {j.id: j for j in _jobs(ctx)}
    assert all(j.state == JobState.DONE for j in jobs.values())
    assert jobs[victim.id].attempts == 2  # taken once more, after the lease of A ran out
    assert set(_states(ctx).values()) == {AssetState.RELEASED}
    released = _actions(ctx, "asset.released")
    assert sorted(r["entity"]["id"] for r in released) == sorted(ids)  # once each
    with transaction(ctx.engine) as s:
        blobs = [a.redacted_blob for a in s.exec(select(Asset)).all()]
    assert len(set(blobs)) == len(ids) and all(blobs)
