"""The whole flow with the buckets as the store: photos uploaded over HTTP to the real gateway
server, redacted by its embedded job runner, released, synced to the real Label Studio, and
each task's image URL serving the redacted copy read back from the bucket."""

from __future__ import annotations

import time

import httpx
import pytest
from sqlmodel import select

from gateway.core.db import transaction
from gateway.core.models import Asset, AssetState
from gateway.labelstudio.sync import sync_dataset
from gateway.vocabulary import Role
from tests.conftest import PHOTOS
from tests.gateway.test_api import make_key
from tests.labelstudio.fixtures import ADMIN, FAST_RETRY
from tests.labelstudio.helpers import assert_no_metadata, project_tasks
from tests.storage.s3.conftest import bucket_keys

pytestmark = [pytest.mark.db, pytest.mark.integration]
NAMES = ["masks_maksssksksss44.jpg", "dashcam_dayride_type1_001_t607.jpg"]


def _wait_released(ctx, ids: list[str], seconds: float = 90.0) -> list[Asset]:
    deadline = time.monotonic() + seconds
    while True:
        with transaction(ctx.engine) as s:
            assets = [s.get(Asset, i) for i in ids]
        done = [a for a in assets if a is not None and a.state == AssetState.RELEASED]
        if len(done) == len(ids):
            return done
        assert time.monotonic() < deadline, [a.state for a in assets if a is not None]
        time.sleep(0.1)  # polling a condition with a deadline, not timing anything


@pytest.mark.timeout(180)
def test_upload_redact_release_sync_with_the_buckets(
    ctx, dataset, gateway_server, destination, labelstudio, moto_endpoint, buckets
) -> None:
    token = make_key(ctx, Role.INGEST, [dataset.id])
    files = [("files", (n, (PHOTOS / n).read_bytes(), "image/jpeg")) for n in NAMES]
    response = httpx.post(
        f"{gateway_server}/v1/datasets/{dataset.id}/assets",
        files=files,
        headers={"Authorization": f"Bearer {token}"},
        timeout=60,
    )
    assert response.status_code == 201, response.text
    ids = [item["asset_id"] for item in response.json()["results"]]
    assets = _wait_released(ctx, ids)

    stored = bucket_keys(moto_endpoint, buckets["eu-de"])
    for asset in assets:  # both blobs of each asset are in the eu-de bucket, named by region
        for blob in (asset.original_blob, asset.redacted_blob):
            assert blob is not None and blob.startswith("regions/eu-de/")
            assert blob.removeprefix("regions/eu-de/") in stored
    assert bucket_keys(moto_endpoint, buckets["us-east"]) == set()

    report = sync_dataset(
        ctx,
        dataset_ref=dataset.name,
        destination_ref=destination.name,
        actor=ADMIN,
        retry=FAST_RETRY,
    )
    assert (report.created, report.failed) == (2, {})
    by_id = {a.id: a for a in assets}
    for task in project_tasks(labelstudio, report.project_id):
        image = httpx.get(task["data"]["image"], headers={"Origin": labelstudio.url})
        assert image.status_code == 200
        asset = by_id[task["data"]["gateway_asset_id"]]
        assert image.content == ctx.store.get(asset.redacted_blob)  # from the bucket
        assert image.content != (PHOTOS / NAMES[0]).read_bytes()
        assert_no_metadata(image.content)
    with transaction(ctx.engine) as s:
        assert len(s.exec(select(Asset)).all()) == 2
