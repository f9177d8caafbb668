"""A reviewer's re-render with a store of regional buckets writes a region-named key.

Found by reading while threading the Clearance through the sinks: the re-render wrote the new
redacted copy under a bare `redacted/...` key, which a store of buckets refuses (the key names
no region), so a review decision failed with buckets. The buckets here are local directories
behind the same `RegionalBlobStore` the S3 stores sit behind.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

import pytest

from gateway.asset_states import transition
from gateway.core.context import GatewayContext
from gateway.core.db import transaction
from gateway.core.models import Asset, AssetState
from gateway.core.settings import Settings
from gateway.core.storage import LocalBlobStore, RegionalBlobStore
from gateway.ingest import Upload, ingest_upload
from gateway.lineage import Actor
from gateway.pipeline import drain
from gateway.redactor import IsolatedRedactor
from gateway.review.labelconfig import ManualBox
from gateway.review.rerender import rerender
from tests.conftest import PHOTOS

pytestmark = [pytest.mark.db, pytest.mark.integration]
T = Actor("cli", "t")


@pytest.fixture
def engine_redactor(settings: Settings) -> Iterator[IsolatedRedactor]:
    redactor = IsolatedRedactor(settings)
    yield redactor
    redactor.close()


def test_a_rerender_with_buckets_stores_the_new_copy_in_the_region(
    ctx, dataset, tmp_path, engine_redactor
) -> None:
    store = RegionalBlobStore(
        {ctx.settings.region: LocalBlobStore(tmp_path / "bucket")}, write_region=ctx.settings.region
    )
    bucketed: GatewayContext = replace(ctx, store=store)
    photo = sorted(PHOTOS.glob("*.jpg"))[0]
    with transaction(bucketed.engine) as s:
        asset_id = ingest_upload(
            s, bucketed, dataset, Upload(photo.name, photo.read_bytes()), actor=T
        ).asset_id
    drain(bucketed, redactor=engine_redactor)
    with transaction(bucketed.engine) as s:
        asset = s.get(Asset, asset_id)
        assert asset is not None and asset.original_blob is not None
        assert asset.original_blob.startswith(f"regions/{ctx.settings.region}/")
        if AssetState(asset.state) is not AssetState.QUARANTINED:  # the review withholds it
            transition(
                s,
                asset,
                AssetState.QUARANTINED,
                actor=T,
                now=ctx.clock(),
                region=ctx.settings.region,
            )
    box = ManualBox("face", 10.0, 10.0, 40.0, 40.0)
    rendered = rerender(
        bucketed, asset_id, (box,), redactor=engine_redactor, actor=T, parameters={}
    )
    with transaction(bucketed.engine) as s:
        asset = s.get(Asset, asset_id)
        assert asset is not None
        assert AssetState(asset.state) is AssetState.RELEASED, rendered
        assert asset.redacted_blob is not None
        assert asset.redacted_blob.startswith(f"regions/{ctx.settings.region}/redacted/")
        assert store.exists(asset.redacted_blob)
