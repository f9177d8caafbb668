"""Two API processes and two Celery worker processes on one PostgreSQL database, one broker
and one bucket behave like one gateway: uploads through either API are each redacted exactly
once; a background sync through either API runs on a worker and puts them in the real Label
Studio, whose tasks' images the APIs serve from the bucket; and the lineage ledger they all
appended to verifies after a checkpoint. (The same flow on the embedded default, one process
and no broker: tests/storage/s3/test_s3_flow.py.)"""

from __future__ import annotations

import json
import subprocess
import sys
from contextlib import ExitStack
from pathlib import Path

import httpx
import pytest
from sqlmodel import col, select

from gateway.core.db import transaction
from gateway.core.models import Asset, AssetState, Job, JobState
from gateway.jobs import SYNC_KIND
from gateway.vocabulary import Role
from tests.conftest import PHOTOS
from tests.gateway.test_api import auth, make_key
from tests.labelstudio.fixtures import add_destination
from tests.labelstudio.helpers import project_tasks
from tests.policy.helpers import lineage
from tests.scaleout.helpers import (
    ROOT,
    delete_queues,
    free_port,
    gateway_env,
    process,
    wait_for,
    with_broker,
)
from tests.storage.s3.conftest import bucket_entry, bucket_keys

pytestmark = [pytest.mark.db, pytest.mark.integration, pytest.mark.timeout(240)]
PHOTOS_4 = sorted(PHOTOS.glob("masks_*.jpg"))[:4]


def _ready(url: str) -> bool:
    try:
        return httpx.get(f"{url}/health/ready", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def _cli(argv: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gateway", *argv],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _sync_through(api: str, dataset_id: str, destination: str, key: str) -> dict:
    sync = f"{api}/v1/datasets/{dataset_id}/sync"
    answer = httpx.post(
        sync, params={"to": destination, "background": "true"}, headers=auth(key), timeout=30
    )
    assert answer.status_code == 202, answer.text
    job = answer.json()["job_id"]

    def done() -> dict | None:
        body = httpx.get(f"{sync}/{job}", headers=auth(key), timeout=30).json()
        return body if body["state"] in ("done", "failed") else None

    return wait_for(done, timeout=120, what="the background sync on a worker")


def test_two_apis_and_two_workers_are_one_gateway(
    ctx, dataset, moto_endpoint, buckets, labelstudio, tmp_path: Path
) -> None:
    if not ctx.settings.resolved_database_url.startswith("postgresql"):
        pytest.skip("replicas on several hosts share PostgreSQL (SQLite is one host's file)")
    settings = with_broker(
        ctx.settings, job_lease_seconds=5.0, job_heartbeat_seconds=1.0, relay_interval_seconds=1.0
    )
    ctx.keys.attach(ctx.engine)  # the pepper the processes use (kept wrapped in the database)
    token = make_key(ctx, Role.INGEST, scope=[dataset.id])
    bucket = bucket_entry(moto_endpoint, "eu-de", buckets["eu-de"])
    checkpoints = tmp_path / "outside" / "checkpoints.jsonl"
    checkpoints.parent.mkdir()

    def env(name: str) -> dict[str, str]:
        (tmp_path / name).mkdir()
        return gateway_env(
            settings,
            GATEWAY_DATA_DIR=str(tmp_path / name),  # its own, empty: nothing shared on disk
            GATEWAY_STORAGE_BACKEND="s3",
            GATEWAY_S3_BUCKETS=json.dumps({"eu-de": bucket}),
            GATEWAY_LINEAGE_CHECKPOINT_LOG=str(checkpoints),
        )

    apis = [f"http://127.0.0.1:{free_port()}" for _ in range(2)]
    try:
        with ExitStack() as stack:
            for i, url in enumerate(apis):
                argv = ["serve", "--port", url.rsplit(":", 1)[1]]
                stack.enter_context(process(argv, env=env(f"api{i}"), log=tmp_path / f"api{i}.log"))
            for i in range(2):
                argv = ["worker", "--port", "0"]
                stack.enter_context(
                    process(argv, env=env(f"worker{i}"), log=tmp_path / f"worker{i}.log")
                )
            for url in apis:
                wait_for(lambda u=url: _ready(u), timeout=60, what=f"the API at {url}")
            ids = []
            for i, photo in enumerate(PHOTOS_4):  # alternately through each API
                files = [("files", (photo.name, photo.read_bytes(), "image/jpeg"))]
                r = httpx.post(
                    f"{apis[i % 2]}/v1/datasets/{dataset.id}/assets",
                    files=files,
                    headers=auth(token),
                    timeout=30,
                )
                assert r.status_code == 201, r.text
                ids.append(r.json()["results"][0]["asset_id"])

            def settled() -> bool:
                with transaction(ctx.engine) as s:
                    jobs = s.exec(select(Job)).all()
                    return len(jobs) == len(ids) and all(
                        j.state in (JobState.DONE, JobState.FAILED) for j in jobs
                    )

            wait_for(settled, timeout=90, what="the workers to redact every upload")
            # annotators' project: registered once, synced in the background through API 2
            destination = add_destination(ctx, labelstudio, apis[0], name="ann", region="eu-de")
            admin = make_key(ctx, Role.ADMIN, scope=None)
            synced = _sync_through(apis[1], dataset.id, destination.name, admin)
            assert (synced["state"], synced["attempts"]) == ("done", 1), synced
            assert synced["report"]["created"] == len(ids)
            tasks = project_tasks(labelstudio, synced["report"]["project_id"])
            assert sorted(t["data"]["gateway_asset_id"] for t in tasks) == sorted(ids)
            for task in tasks:  # served by API 1 from the bucket, the released copy
                image = httpx.get(task["data"]["image"], headers={"Origin": labelstudio.url})
                assert image.status_code == 200
                assert image.content[:2] == b"\xff\xd8" and len(image.content) > 1000
        with transaction(ctx.engine) as s:
            jobs = s.exec(select(Job).order_by(col(Job.id))).all()
            assets = {a.id: a for a in s.exec(select(Asset)).all()}
        jobs = [j for j in jobs if j.kind != SYNC_KIND]
        assert [(j.state, j.attempts) for j in jobs] == [(JobState.DONE, 1)] * len(ids)
        assert {a.state for a in assets.values()} == {AssetState.RELEASED}
        released = [r["entity"]["id"] for r in lineage(ctx, "asset.released")]
        assert sorted(released) == sorted(ids)  # each exactly once
        stored = bucket_keys(moto_endpoint, buckets["eu-de"])
        for asset in assets.values():  # both copies in the one bucket, none on a local disk
            for key in (asset.original_blob, asset.redacted_blob):
                assert key is not None and key.split("/", 2)[2] in stored
        assert all((j.worker or "").endswith(":eu-de") for j in jobs)

        cli_env = env("verifier")
        made = _cli(["lineage", "checkpoint"], cli_env)
        assert made.returncode == 0, made.stdout + made.stderr
        checked = _cli(["verify", "--strict", "--json"], cli_env)
        assert checked.returncode == 0, checked.stdout + checked.stderr
        result = json.loads(checked.stdout)
        assert result["intact"] is True and result["unanchored"] == 0
        assert result["pinned_checkpoints"] >= 1
    finally:
        delete_queues(settings.broker_queue_prefix)
