"""The buckets as the blob store, against moto's S3 server on loopback: the object operations,
originals sealed before they reach a bucket, the residency gate on every write, and a
process that holds one region's credentials only."""

from __future__ import annotations

import uuid

import pytest
from sqlmodel import select

from gateway.core import crypto
from gateway.core.clearance import Clearance, EnforcementPoint
from gateway.core.context import GatewayContext
from gateway.core.db import transaction
from gateway.core.errors import NotFound, ResidencyViolation
from gateway.core.keys import KeyPurpose
from gateway.core.models import Asset
from gateway.core.settings import S3Bucket, Settings
from gateway.core.storage import RegionalBlobStore, StorageRegionUnavailable, grant_storage_write
from gateway.core.storage_s3 import S3BlobStore, StorageOutage, open_store, s3_client
from gateway.ingest import Upload, ingest_upload, original_aad
from gateway.lineage import Actor
from tests.conftest import PHOTOS
from tests.policy.helpers import bind, lineage, policy_doc
from tests.storage.s3.conftest import admin_client, bucket_entry, bucket_keys

pytestmark = pytest.mark.db
PHOTO = (PHOTOS / "masks_maksssksksss44.jpg").read_bytes()
T = Actor("cli", "test")


def _ingest(ctx, dataset, data: bytes = PHOTO):
    with transaction(ctx.engine) as s:
        return ingest_upload(s, ctx, dataset, Upload("a.jpg", data), actor=T)


def test_a_bucket_puts_gets_tells_and_deletes(moto_endpoint, buckets) -> None:
    bucket = S3Bucket.model_validate(bucket_entry(moto_endpoint, "eu-de", buckets["eu-de"]))
    store = S3BlobStore(s3_client(bucket), bucket.bucket, prefix="gw/")
    assert not store.exists("health/x")
    store.put("health/x", b"one")
    assert store.exists("health/x") and store.get("health/x") == b"one"
    store.put("health/x", b"two")  # overwrite, as the local store's rename does
    assert store.get("health/x") == b"two"
    assert bucket_keys(moto_endpoint, bucket.bucket) == {"gw/health/x"}
    assert store.delete("health/x") is True
    assert store.delete("health/x") is False
    with pytest.raises(NotFound):
        store.get("health/x")
    with pytest.raises(ValueError, match="unsafe"):
        store.put("../escape", b"")


def test_an_unreachable_endpoint_is_an_outage_not_a_verdict(buckets) -> None:
    bucket = S3Bucket.model_validate(bucket_entry("http://127.0.0.1:9", "eu-de", "nowhere"))
    store = S3BlobStore(s3_client(bucket), bucket.bucket)
    with pytest.raises(StorageOutage):  # an OSError: 503 in the API, a deferral for a job
        store.get("health/x")


def test_readiness_says_when_the_bucket_is_away(ctx, settings) -> None:
    from gateway.health import readiness

    away = settings.s3_buckets["eu-de"].model_copy(update={"endpoint_url": "http://127.0.0.1:9"})
    dead = RegionalBlobStore(
        {"eu-de": S3BlobStore(s3_client(away), away.bucket)}, write_region="eu-de"
    )
    assert readiness(ctx.engine, ctx.store, None).checks == {"database": "ok", "storage": "ok"}
    report = readiness(ctx.engine, dead, None)
    assert not report.ready and report.checks["storage"] == "StorageOutage"


def test_originals_reach_the_bucket_sealed(ctx, dataset, moto_endpoint, buckets) -> None:
    outcome = _ingest(ctx, dataset)
    with transaction(ctx.engine) as s:
        asset = s.get(Asset, outcome.asset_id)
        assert asset is not None and asset.original_blob is not None
        key = ctx.keys.dataset_key(s, dataset.id, version=asset.key_version)
    assert asset.original_blob.startswith("regions/eu-de/originals/")
    inner = asset.original_blob.removeprefix("regions/eu-de/")
    assert bucket_keys(moto_endpoint, buckets["eu-de"]) == {inner}
    raw = admin_client(moto_endpoint).get_object(Bucket=buckets["eu-de"], Key=inner)["Body"]
    stored = raw.read()
    assert stored[:2] != b"\xff\xd8" and PHOTO[:64] not in stored and PHOTO[-64:] not in stored
    assert len(stored) == len(PHOTO) + 12 + 16  # nonce + ciphertext + tag
    plain = crypto.unseal(
        stored, key=key.subkey(KeyPurpose.AT_REST), aad=original_aad(asset.id, key)
    )
    assert plain == PHOTO
    assert bucket_keys(moto_endpoint, buckets["us-east"]) == set()


def test_residency_refuses_a_bucket_its_policy_does_not_allow(
    ctx, dataset, moto_endpoint, buckets
) -> None:
    bind(ctx, dataset, policy_doc(residency={"storage_regions": ["FR"]}))
    with pytest.raises(ResidencyViolation) as info:
        _ingest(ctx, dataset)
    assert info.value.details["point"] == "storage_write"
    assert info.value.details["target_region"] == "eu-de"
    assert bucket_keys(moto_endpoint, buckets["eu-de"]) == set()
    with transaction(ctx.engine) as s:
        assert s.exec(select(Asset)).all() == []
    assert len(lineage(ctx, "residency.blocked")) == 1


def _cleared(dataset_id: str, region: str) -> Clearance:
    """Tests make clearances directly; in the product only the enforcement code does."""
    return Clearance(dataset_id, EnforcementPoint.STORAGE_WRITE, region, "test@1")


def test_the_store_refuses_a_write_no_residency_check_let_through(
    ctx, moto_endpoint, buckets
) -> None:
    dataset_id = f"ds-{uuid.uuid4().hex[:8]}"
    key = f"regions/eu-de/originals/{dataset_id}/ab/abc.bin"
    with pytest.raises(ResidencyViolation, match="no storage residency check"):
        ctx.store.put(key, b"sealed")
    grant_storage_write(_cleared(dataset_id, "eu-fr"))  # a check for another region does not count
    with pytest.raises(ResidencyViolation):
        ctx.store.put(key, b"sealed")
    assert bucket_keys(moto_endpoint, buckets["eu-de"]) == set()
    grant_storage_write(_cleared(dataset_id, "eu-de"))
    ctx.store.put(key, b"sealed")
    assert ctx.store.get(key) == b"sealed"
    with pytest.raises(ResidencyViolation):  # one write per check
        ctx.store.put(key, b"again")


def test_a_process_holding_one_regions_credentials_reaches_only_that_bucket(
    ctx, settings, moto_endpoint, buckets
) -> None:
    """The eu-de process (this folder's `ctx`) and a us-east worker, each configured with its
    own region's bucket and key pair only."""
    us_settings = Settings(
        **{
            **settings.model_dump(exclude={"s3_buckets", "region"}),
            "region": "us-east",
            "s3_buckets": {"us-east": bucket_entry(moto_endpoint, "us-east", buckets["us-east"])},
        }
    )
    us_store = open_store(us_settings)
    assert isinstance(us_store, RegionalBlobStore) and set(us_store.stores) == {"us-east"}
    assert isinstance(ctx.store, RegionalBlobStore) and set(ctx.store.stores) == {"eu-de"}
    eu_client = ctx.store.stores["eu-de"].client  # type: ignore[attr-defined]
    assert eu_client._request_signer._credentials.access_key == "eu-access-key"

    us_key = us_store.key_in("us-east", "health/probe-us")
    us_store.put(us_key, b"us data")
    for operation in (ctx.store.get, ctx.store.exists, ctx.store.delete):
        with pytest.raises(StorageRegionUnavailable) as info:
            operation(us_key)
        assert info.value.code == "storage-region-unavailable"
        assert info.value.details == {"region": "us-east"}
    grant_storage_write(_cleared("ds-x", "us-east"))  # even a permit gives no credentials
    with pytest.raises(StorageRegionUnavailable):
        ctx.store.put("regions/us-east/originals/ds-x/ab/abc.bin", b"x")
    assert us_store.get(us_key) == b"us data"  # still there, untouched
    with pytest.raises(StorageRegionUnavailable, match="names no storage region"):
        ctx.store.get("originals/ds-x/ab/abc.bin")  # a local store's key


def test_settings_refuse_a_bucket_map_without_the_write_region(moto_endpoint) -> None:
    entry = bucket_entry(moto_endpoint, "us-east", "b-us")
    with pytest.raises(ValueError, match="must name its bucket"):
        Settings(storage_backend="s3", region="eu-de", s3_buckets={"us-east": entry})
    with pytest.raises(ValueError, match="exactly one credential source"):
        S3Bucket.model_validate({**entry, "default_credentials": True})
    with pytest.raises(ValueError, match="go together"):
        S3Bucket.model_validate({"bucket": "b-us", "access_key_id": "only-half"})


def test_a_worker_without_the_regions_credentials_gives_the_job_back(
    ctx, dataset, settings, moto_endpoint, buckets
) -> None:
    """A us-east worker handed an eu-de asset's job cannot read its original: no verdict on
    the image (not quarantined), the job is queued again for a worker that can, bounded by
    its attempts."""
    from gateway.core.models import Job, JobState
    from gateway.pipeline import process_next
    from tests.pseudonymisation.test_custody import DecryptsOnly

    asset_id = _ingest(ctx, dataset).asset_id
    us_settings = Settings(
        **{
            **settings.model_dump(exclude={"s3_buckets", "region"}),
            "region": "us-east",
            "s3_buckets": {"us-east": bucket_entry(moto_endpoint, "us-east", buckets["us-east"])},
        }
    )
    us_worker = GatewayContext(
        settings=us_settings,
        engine=ctx.engine,
        keys=ctx.keys,
        store=open_store(us_settings),
        clock=ctx.clock,
    )
    ran = process_next(us_worker, redactor=DecryptsOnly(), worker="us-worker")
    assert ran is not None and ran.state is None  # tried again later
    with transaction(ctx.engine) as s:
        asset = s.get(Asset, asset_id)
        job = s.exec(select(Job).where(Job.asset_id == asset_id)).one()
    assert asset is not None and asset.state == "processing"  # not quarantined
    assert job.state == JobState.QUEUED and job.error_code == "storage-region-unavailable"
