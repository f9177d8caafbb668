"""Key custody of the scheduler: it holds the gateway-wide credential only (lineage
checkpoints, gateway secrets), never a region's; everything that needs a region's keys runs as
a task on that region's worker. A scheduler handed a region credential is refused at start
(fail closed: it does not need it, and the one process that talks to every region's queue
must not be able to open a region's dataset keys); a worker handed the gateway-wide one too."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlmodel import select

from gateway.core.clock import utc_now
from gateway.core.context import GatewayContext
from gateway.core.db import transaction
from gateway.core.errors import KeyCustodyRefused
from gateway.core.models import Asset, AssetState, DatasetKey, Job
from gateway.core.settings import S3Bucket
from gateway.lineage.tables import LineageCheckpoint
from gateway.main import create_app
from gateway.pipeline import NotBuiltRedactor, drain
from gateway.scaleout.kms import CredentialRefused, KmsClient
from gateway.scaleout.periodic import RECONCILE_TASK, REVIEW_PULL_TASK
from gateway.scaleout.worker import run_scheduler, worker_region
from gateway.vocabulary import Role
from tests.gateway.test_api import auth, make_key
from tests.gateway.test_jobs import Releases, ingest
from tests.policy.helpers import bind, lineage, policy_doc
from tests.scaleout.helpers import delete_queues, gateway_env, process, wait_for, with_broker
from tests.scaleout.kms_fixtures import (
    gateway_wide_settings,
    region_dataset,
    region_settings,
)
from tests.scaleout.test_review_pull_route import review_destination
from tests.storage.s3.conftest import bucket_entry, bucket_keys, buckets, moto_endpoint

__all__ = ["buckets", "moto_endpoint"]  # fixtures: moto's S3 server, a bucket per region

pytestmark = [pytest.mark.db, pytest.mark.timeout(60)]
ORIGINAL_DELETED = "asset.original_deleted"  # spelled out: the recorded value itself


def test_the_gateway_wide_credential_opens_the_gateway_key_and_no_regions(kms_service) -> None:
    client = KmsClient(kms_service.url, credential=kms_service.gateway_credential)
    try:
        me = client.whoami()
        assert (me.region, me.region_key_id, me.gateway_key_id) == (None, None, "kms:gateway:1")
        sealed = client.call("wrap", key_id="kms:gateway:1", plaintext="AAAA", aad="")
        opened = client.call("unwrap", key_id="kms:gateway:1", aad="", **sealed)
        assert opened == {"plaintext": "AAAA"}
        for key_id in ("kms:eu-de:1", "kms:us-east:1"):
            with pytest.raises(KeyCustodyRefused):
                client.call("wrap", key_id=key_id, plaintext="AAAA", aad="")
        with pytest.raises(KeyCustodyRefused):
            client.call("rotate")  # it holds no region key to rotate
        with pytest.raises(KeyCustodyRefused):
            client.call("retire", key_id="kms:gateway:1")
        with pytest.raises(KeyCustodyRefused):
            client.region_key_id()
    finally:
        client.close()
    refused = {(r["operation"], r["key_id"]) for r in kms_service.refused()}
    assert refused == {
        ("wrap", "kms:eu-de:1"),
        ("wrap", "kms:us-east:1"),
        ("rotate", ""),
        ("retire", "kms:gateway:1"),
    }
    assert {r["caller"] for r in kms_service.kms.audit} == {"gateway"}


def test_a_process_of_the_gateway_wide_credential_opens_no_dataset_key(
    eu, settings, kms_service
) -> None:
    dataset = region_dataset(eu)  # made by the eu process: wrapped under eu's key
    ctx = GatewayContext.open(gateway_wide_settings(settings, kms_service))
    try:
        assert ctx.custody_region is None and ctx.keys.kms is not None
        assert ctx.keys.master.key_id == "kms:gateway:1"  # gateway secrets: fine
        with transaction(ctx.engine) as s, pytest.raises(KeyCustodyRefused):
            ctx.keys.dataset_key(s, dataset.id)
        with pytest.raises(KeyCustodyRefused):  # nor makes one (no region key to wrap it)
            region_dataset(ctx, "made-by-the-scheduler")
    finally:
        ctx.close()
    with transaction(eu.engine) as s:
        rows = s.exec(select(DatasetKey)).all()
    assert [r.master_key_id for r in rows] == ["kms:eu-de:1"]


def test_a_scheduler_handed_a_region_credential_is_refused_at_start(
    eu, settings, kms_service
) -> None:
    with pytest.raises(CredentialRefused) as refused:
        run_scheduler(region_settings(settings, kms_service, "eu-de"))
    assert refused.value.details["credential_region"] == "eu-de"
    assert "gateway-wide credential" in str(refused.value)


def test_a_worker_handed_the_gateway_wide_credential_is_refused(settings, kms_service) -> None:
    ctx = GatewayContext.open(gateway_wide_settings(settings, kms_service))
    try:
        with pytest.raises(CredentialRefused):
            worker_region(ctx, claimed="eu-de")  # a flag does not make it a region
    finally:
        ctx.close()


# --- the whole schedule, with processes: real RabbitMQ, moto S3, the fake key service --------

US_ONLY = {
    "origin": "us",
    "processing_regions": ["US"],
    "storage_regions": ["US"],
    "annotation_regions": ["US"],
}
FAST = {  # the scheduler's intervals (its messages expire after one interval)
    "GATEWAY_RETENTION_INTERVAL_SECONDS": "1",
    "GATEWAY_ANNOTATION_PULL_INTERVAL_SECONDS": "1",
    "GATEWAY_REVIEW_PULL_INTERVAL_SECONDS": "1",
    "GATEWAY_LINEAGE_CHECKPOINT_POLL_SECONDS": "0.5",
}


def _ran(log: Path, task: str, result: str) -> bool:
    """The worker's log says `task` succeeded with a result starting `result`."""
    pattern = rf"{re.escape(task)}\[([0-9a-f-]+)\] succeeded in [0-9.e-]+s: '{re.escape(result)}"
    return log.exists() and re.search(pattern, log.read_text()) is not None


def _region_env(ctx: GatewayContext, entry: dict[str, Any]) -> dict[str, str]:
    return gateway_env(
        ctx.settings,
        GATEWAY_STORAGE_BACKEND="s3",
        GATEWAY_S3_BUCKETS=json.dumps({ctx.settings.region: entry}),
        GATEWAY_WORKER_REGIONS="eu-de,us-east",
    )


@pytest.mark.integration
@pytest.mark.timeout(240)
def test_a_scheduler_with_the_gateway_credential_runs_the_whole_schedule(
    settings, kms_service, moto_endpoint, buckets, tmp_path
) -> None:
    """Retention per region, the reconcile, the review pull (periodic and one the API sends)
    and lineage checkpoints, with the scheduler holding the gateway-wide credential and no
    bucket: each region's worker deletes its own bucket's original; the key service saw the
    scheduler use the gateway-wide key only, and refused nobody."""
    base = with_broker(settings, worker_regions="eu-de,us-east")
    prefix = base.broker_queue_prefix
    entries = {r: bucket_entry(moto_endpoint, r, name) for r, name in buckets.items()}
    ctxs: dict[str, GatewayContext] = {}
    for region, entry in entries.items():
        own = region_settings(
            base, kms_service, region, storage_backend="s3", s3_buckets={region: S3Bucket(**entry)}
        )
        ctxs[region] = GatewayContext.open(own)
    eu, us = ctxs["eu-de"], ctxs["us-east"]
    try:
        eu_data, us_data = region_dataset(eu, "berlin"), region_dataset(us, "virginia")
        bind(us, us_data, policy_doc(residency=US_ONLY))
        originals = {}
        for ctx, data in ((eu, eu_data), (us, us_data)):  # released in process (not under test)
            asset_id = ingest(ctx, data)
            assert drain(ctx, redactor=Releases()) == 1
            originals[asset_id] = ctx.settings.region
        with transaction(eu.engine) as s:  # 31 days old: both originals are due
            for asset in s.exec(select(Asset)).all():
                assert asset.state == AssetState.RELEASED and asset.original_blob
                assert asset.original_blob.startswith(f"regions/{originals[asset.id]}/")
                asset.created_at = utc_now() - timedelta(days=31)
                s.add(asset)
        review_destination(eu, eu_data)
        sched = gateway_wide_settings(base, kms_service)
        sched_env = gateway_env(sched, GATEWAY_WORKER_REGIONS="eu-de,us-east", **FAST)
        assert "GATEWAY_S3_BUCKETS" not in sched_env and "GATEWAY_MASTER_KEY" not in sched_env
        logs = {r: tmp_path / f"worker-{r}.log" for r in ctxs}
        with (
            process(
                ["worker", "--port", "0"], env=_region_env(eu, entries["eu-de"]), log=logs["eu-de"]
            ),
            process(
                ["worker", "--port", "0"],
                env=_region_env(us, entries["us-east"]),
                log=logs["us-east"],
            ),
            process(["scheduler"], env=sched_env, log=tmp_path / "scheduler.log"),
        ):
            wait_for(
                lambda: len(lineage(eu, ORIGINAL_DELETED)) == 2,
                timeout=150,
                what="each region's worker to run its retention",
            )
            wait_for(lambda: _checkpoints(eu), timeout=60, what="a signed lineage checkpoint")
            for region, log in logs.items():
                wait_for(
                    lambda log=log: _ran(log, REVIEW_PULL_TASK, "decided-0"),
                    timeout=60,
                    what=f"the {region} worker's periodic review pull",
                )
            wait_for(
                lambda: _ran(logs["eu-de"], RECONCILE_TASK, "pulled-"),
                timeout=60,
                what="the home region's worker to run the reconcile",
            )
            app = create_app(eu.settings, ctx=eu, redactor_factory=NotBuiltRedactor)
            token = make_key(eu, Role.ADMIN)
            url = f"/v1/datasets/{eu_data.id}/review/pull"
            with TestClient(app) as client:
                sent = client.post(url, headers=auth(token))
                assert sent.status_code == 202, sent.text
                job_url = f"{url}/{sent.json()['job_id']}"

                def settled() -> dict[str, Any] | None:
                    view: dict[str, Any] = client.get(job_url, headers=auth(token)).json()
                    return view if view["state"] in ("done", "failed") else None

                pulled = wait_for(settled, timeout=60, what="the eu worker to run the pull job")
            assert pulled["state"] == "done", pulled
            assert pulled["queue"] == f"{prefix}redact.eu-de" and pulled["attempts"] == 1
            with transaction(eu.engine) as s:
                job = s.get(Job, pulled["job_id"])
                assert job is not None and str(job.worker).endswith(":eu-de")
        deleted = {r["entity"]["id"]: r["region"] for r in lineage(eu, ORIGINAL_DELETED)}
        assert deleted == originals  # each by its own region's worker, once
        for region, name in buckets.items():
            assert not [k for k in bucket_keys(moto_endpoint, name) if "/original" in k], region
        assert not _ran(logs["us-east"], RECONCILE_TASK, "")  # sent to the home region only
        scheduler_calls = kms_service.calls_by("gateway")
        assert scheduler_calls, "the scheduler signs with the gateway-wide key"
        assert {str(c["key_id"]).rsplit(":", 1)[0] for c in scheduler_calls} == {"kms:gateway"}
        assert kms_service.refused() == []  # nobody needed a key it does not hold
        assert not any((tmp_path / "scheduler-blobs").rglob("*.*"))  # it wrote no blob
        checkpoint = _checkpoints(eu)[-1]
        assert checkpoint.tree_size >= 1
    finally:
        for ctx in ctxs.values():
            ctx.close()
        delete_queues(prefix)


def _checkpoints(ctx: GatewayContext) -> list[LineageCheckpoint]:
    with transaction(ctx.engine) as s:
        return list(s.exec(select(LineageCheckpoint)).all())
