"""Two API processes and two Celery worker processes on one PostgreSQL database, one broker
and one bucket behave like one gateway: uploads through either API are each redacted exactly
once, and the lineage ledger they all appended to verifies after a checkpoint."""

from __future__ import annotations

import json
import subprocess
import sys
from contextlib import ExitStack
from pathlib import Path

import httpx
import pytest
from sqlmodel import col, select

from gateway.db import transaction
from gateway.models import Asset, AssetState, Job, JobState
from gateway.vocabulary import Role
from tests.conftest import PHOTOS
from tests.gateway.test_api import auth, make_key
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

pytestmark = [pytest.mark.db, pytest.mark.integration, pytest.mark.timeout(120)]
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


def test_two_apis_and_two_workers_are_one_gateway(
    ctx, dataset, moto_endpoint, buckets, tmp_path: Path
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
        with transaction(ctx.engine) as s:
            jobs = s.exec(select(Job).order_by(col(Job.id))).all()
            assets = {a.id: a for a in s.exec(select(Asset)).all()}
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
