"""Retention as a worker task, one run per region: a region's worker deletes only the blobs
in its own bucket (it holds no other bucket's credentials), refuses a run meant for another
region, and two runs of one region at once delete each item once."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
from sqlmodel import select

from gateway.core.context import GatewayContext
from gateway.core.db import transaction
from gateway.core.models import Asset, AssetState
from gateway.core.settings import Settings
from gateway.core.storage_s3 import open_store
from gateway.datasets import DatasetSpec, create_dataset
from gateway.ingest import Upload, ingest_upload
from gateway.lineage import Action, Actor
from gateway.pipeline import drain
from gateway.scaleout.periodic import run_retention_task
from gateway.scaleout.tasks import WorkerRuntime
from tests.conftest import DATASET_SPEC, PHOTOS
from tests.policy.helpers import bind, lineage, policy_doc
from tests.storage.s3.conftest import bucket_entry, bucket_keys

pytestmark = pytest.mark.db
PHOTO = sorted(PHOTOS.glob("masks_*.jpg"))[0]
US_ONLY = {
    "origin": "us",
    "processing_regions": ["US"],
    "storage_regions": ["US"],
    "annotation_regions": ["US"],
}


def _region_ctx(base: GatewayContext, settings: Settings, region: str, entry: dict[str, Any]):
    own = Settings(
        **{
            **settings.model_dump(exclude={"s3_buckets", "region"}),
            "region": region,
            "worker_regions": "eu-de,us-east",
            "s3_buckets": {region: entry},
        }
    )
    return GatewayContext(
        settings=own, engine=base.engine, keys=base.keys, store=open_store(own), clock=base.clock
    )


@pytest.fixture
def regions(ctx, settings, moto_endpoint, buckets) -> Iterator[dict[str, GatewayContext]]:
    made = {
        region: _region_ctx(ctx, settings, region, bucket_entry(moto_endpoint, region, name))
        for region, name in buckets.items()
    }
    yield made
    for one in made.values():
        one.store = ctx.store  # the engine is the shared one's: closed by its fixture


def _one_released_asset(ctx: GatewayContext, name: str, redactor, residency=None) -> Asset:
    spec = DatasetSpec.model_validate(DATASET_SPEC).model_copy(update={"name": name})
    with transaction(ctx.engine) as s:
        dataset = create_dataset(s, ctx, spec, actor=Actor("cli", "t"))
    if residency is not None:
        bind(ctx, dataset, policy_doc(residency=residency))
    with transaction(ctx.engine) as s:
        out = ingest_upload(
            s, ctx, dataset, Upload(PHOTO.name, PHOTO.read_bytes()), actor=Actor("cli", "t")
        )
    assert drain(ctx, redactor=redactor) >= 1
    with transaction(ctx.engine) as s:
        asset = s.get(Asset, out.asset_id)
        assert asset is not None and asset.state == AssetState.RELEASED
        s.expunge(asset)
    return asset


def _runtime(ctx: GatewayContext, redactor) -> WorkerRuntime:
    region = ctx.settings.region
    return WorkerRuntime(ctx, region, redactor, f"test:{region}")


def test_each_region_deletes_only_its_own_buckets_blobs_once(
    regions, clock, moto_endpoint, buckets, session_redactor
) -> None:
    eu, us = regions["eu-de"], regions["us-east"]
    eu_asset = _one_released_asset(eu, "berlin", session_redactor)
    us_asset = _one_released_asset(us, "virginia", session_redactor, residency=US_ONLY)
    assert eu_asset.original_blob and eu_asset.original_blob.startswith("regions/eu-de/")
    assert us_asset.original_blob and us_asset.original_blob.startswith("regions/us-east/")
    clock.advance(days=31)  # originals_days=30: both originals are due

    us_rt = _runtime(us, session_redactor)
    assert run_retention_task(us_rt, "eu-de") == "refused-region"  # not its bucket
    assert run_retention_task(us_rt, "us-east") == "deleted-1"
    us_inner = us_asset.original_blob.split("/", 2)[2]
    eu_inner = eu_asset.original_blob.split("/", 2)[2]
    assert us_inner not in bucket_keys(moto_endpoint, buckets["us-east"])
    assert eu_inner in bucket_keys(moto_endpoint, buckets["eu-de"])  # left for the eu worker

    answers: list[str] = []

    def run(rt: WorkerRuntime) -> None:
        answers.append(run_retention_task(rt, "eu-de"))

    runs = [
        threading.Thread(target=run, args=(rt,))
        for rt in (_runtime(eu, session_redactor), _runtime(eu, session_redactor))
    ]
    for run in runs:
        run.start()
    for run in runs:
        run.join(timeout=60)
    assert sorted(answers) in (["busy", "deleted-1"], ["deleted-0", "deleted-1"]), answers
    assert eu_inner not in bucket_keys(moto_endpoint, buckets["eu-de"])
    deleted = [(r["entity"]["id"], r["region"]) for r in lineage(eu, Action.ASSET_ORIGINAL_DELETED)]
    assert sorted(deleted) == sorted([(eu_asset.id, "eu-de"), (us_asset.id, "us-east")])
    with transaction(eu.engine) as s:  # the redacted copies stay (redacted_days=365)
        assets = s.exec(select(Asset)).all()
        assert {a.state for a in assets} == {AssetState.RELEASED}
        assert all(a.original_blob is None and a.redacted_blob for a in assets)
