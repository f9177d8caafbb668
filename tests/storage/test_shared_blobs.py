"""Identical redacted copies never share bytes between assets (issue 21): erasing one asset
leaves every other live asset's copy readable, and erasing a subject leaves none of their
copies behind. Real redaction engine, real store, real database."""

from __future__ import annotations

import struct

import pytest
from sqlmodel import select

from gateway.core.db import transaction
from gateway.core.models import Asset, AssetState
from gateway.core.storage import RegionalBlobStore
from gateway.ingest import Upload, ingest_upload
from gateway.lineage import Actor
from gateway.pipeline import drain
from gateway.policy.erasure import request_erasure
from tests.conftest import PHOTOS
from tests.policy.helpers import ADMIN

pytestmark = pytest.mark.db
PHOTO = "masks_maksssksksss44.jpg"


def with_comment(jpeg: bytes, comment: bytes) -> bytes:
    """The same pixels with a JPEG COM segment after SOI: other bytes, identical redaction."""
    return jpeg[:2] + b"\xff\xfe" + struct.pack(">H", len(comment) + 2) + comment + jpeg[2:]


def _release(ctx, dataset, redactor, subjects: list[str]) -> list[str]:
    photo = (PHOTOS / PHOTO).read_bytes()
    ids = []
    for i, subject in enumerate(subjects):
        with transaction(ctx.engine) as s:
            upload = Upload(
                f"copy-{i}.jpg", with_comment(photo, b"copy %d" % i), subject_id=subject
            )
            ids.append(ingest_upload(s, ctx, dataset, upload, actor=Actor("cli", "t")).asset_id)
    drain(ctx, redactor=redactor)
    with transaction(ctx.engine) as s:
        assets = [s.get(Asset, i) for i in ids]
        assert all(a is not None and a.state == AssetState.RELEASED for a in assets)
        assert len({a.redacted_sha256 for a in assets if a is not None}) == 1  # identical copies
    return ids


def _live_keys(ctx) -> set[str]:
    with transaction(ctx.engine) as s:
        rows = s.exec(select(Asset)).all()
        return {k for a in rows for k in (a.original_blob, a.redacted_blob) if k is not None}


def _stored_keys(ctx) -> set[str]:
    """Every blob the store holds, named as asset rows name them (tests/storage/s3 runs these
    tests again with the buckets as the store)."""
    store = ctx.store
    if isinstance(store, RegionalBlobStore):
        from tests.storage.s3.conftest import bucket_keys

        return {
            store.key_in(region, key)
            for region, bucket in ctx.settings.s3_buckets.items()
            for key in bucket_keys(bucket.endpoint_url or "", bucket.bucket)
        }
    root = ctx.settings.resolved_storage_dir
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}


def test_erasing_one_asset_keeps_every_other_assets_identical_copy(
    ctx, dataset, session_redactor
) -> None:
    ids = _release(ctx, dataset, session_redactor, ["alice", "bob", "carol", "dave"])
    with transaction(ctx.engine) as s:
        request_erasure(ctx, s, dataset_ref=dataset.id, actor=ADMIN, asset_id=ids[0])
    with transaction(ctx.engine) as s:
        for asset_id in ids[1:]:
            asset = s.get(Asset, asset_id)
            assert asset is not None and asset.redacted_blob is not None
            assert ctx.store.exists(asset.redacted_blob), "a live asset lost its redacted copy"
            assert ctx.store.get(asset.redacted_blob)  # readable, not a 404
    assert _stored_keys(ctx) == _live_keys(ctx)  # and nothing of the erased asset is left


def test_erasing_a_subject_removes_every_copy_of_theirs(ctx, dataset, session_redactor) -> None:
    ids = _release(ctx, dataset, session_redactor, ["alice", "bob", "alice"])
    with transaction(ctx.engine) as s:
        alice_keys = {
            k
            for i in (ids[0], ids[2])
            for a in [s.get(Asset, i)]
            if a is not None
            for k in (a.original_blob, a.redacted_blob)
            if k is not None
        }
        result = request_erasure(ctx, s, dataset_ref=dataset.id, actor=ADMIN, subject_id="alice")
    assert sorted(result.erased) == sorted([ids[0], ids[2]])
    assert len(alice_keys) == 4  # two originals, two redacted copies: nothing shared
    assert not alice_keys & _stored_keys(ctx)
    assert _stored_keys(ctx) == _live_keys(ctx)  # bob's copy, and only bob's, remains


def test_a_legacy_shared_key_is_deleted_with_its_last_user_only(
    ctx, dataset, session_redactor
) -> None:
    """Stores written before per-asset keys hold one blob that several rows name: deleting one
    asset keeps it while another live asset names it; the last one takes it away."""
    ids = _release(ctx, dataset, session_redactor, ["erin", "frank"])
    with transaction(ctx.engine) as s:
        first, second = s.get(Asset, ids[0]), s.get(Asset, ids[1])
        assert first is not None and second is not None and first.redacted_blob is not None
        ctx.store.delete(second.redacted_blob or "")
        second.redacted_blob = shared = first.redacted_blob  # the old content-addressed layout
        s.add(second)
    with transaction(ctx.engine) as s:
        request_erasure(ctx, s, dataset_ref=dataset.id, actor=ADMIN, asset_id=ids[0])
    assert ctx.store.exists(shared)
    with transaction(ctx.engine) as s:
        request_erasure(ctx, s, dataset_ref=dataset.id, actor=ADMIN, asset_id=ids[1])
    assert not ctx.store.exists(shared)
    assert _stored_keys(ctx) == _live_keys(ctx) == set()
