"""The pipeline end to end on real photos with the real, isolated redaction engine."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
from PIL import Image
from sqlmodel import col, select

from gateway.core.db import transaction
from gateway.core.models import Asset, AssetState, Detection, LineageRecord
from gateway.ingest import Upload, ingest_upload
from gateway.lineage import Actor, verify_chain
from gateway.pipeline import drain
from gateway.redactor import IsolatedRedactor
from tests.conftest import PHOTOS

pytestmark = [pytest.mark.db, pytest.mark.integration]
GT = {i["file"]: i for i in json.loads((PHOTOS / "gt.json").read_text())["images"]}
FACES = "masks_maksssksksss44.jpg"
PLATES = "dashcam_dayride_type1_001_t607.jpg"


def _ingest(ctx, dataset, name: str) -> str:
    with transaction(ctx.engine) as s:
        out = ingest_upload(
            s,
            ctx,
            dataset,
            Upload(name, (PHOTOS / name).read_bytes(), subject_id="alice@example.org"),
            actor=Actor("cli", "t"),
        )
    return out.asset_id


@pytest.mark.timeout(300)
def test_real_photos_are_released_redacted_and_recorded(ctx, dataset) -> None:
    ids = {name: _ingest(ctx, dataset, name) for name in (FACES, PLATES)}
    redactor = IsolatedRedactor(ctx.settings)
    try:
        assert drain(ctx, redactor=redactor) == 2
    finally:
        redactor.close()
    with transaction(ctx.engine) as s:
        for name, asset_id in ids.items():
            asset = s.get(Asset, asset_id)
            assert asset is not None and asset.state == AssetState.RELEASED, asset
            sealed = ctx.store.get(asset.original_blob or "")
            original = (PHOTOS / name).read_bytes()
            assert original[:64] not in sealed  # encrypted at rest
            redacted = ctx.store.get(asset.redacted_blob or "")
            _check_redacted(name, original, redacted)
            labels = {
                d.label for d in s.exec(select(Detection).where(Detection.asset_id == asset_id))
            }
            assert labels >= ({"face"} if name == FACES else {"plate"})
        actions = [r.action for r in s.exec(select(LineageRecord).order_by(col(LineageRecord.seq)))]
        assert actions.count("asset.released") == 2
        released = s.exec(
            select(LineageRecord).where(LineageRecord.action == "asset.released")
        ).first()
        assert released is not None
        assert "alice@example.org" not in released.payload  # no direct identifiers in lineage
        assert json.loads(released.payload)["parameters"]["redaction_policy_sha256"]
        verify_chain(s)


def _check_redacted(name: str, original: bytes, redacted: bytes) -> None:
    img = Image.open(__import__("io").BytesIO(redacted))
    assert img.format == "JPEG"
    assert not img.getexif() and "icc_profile" not in img.info and "comment" not in img.info
    before = cv2.imdecode(np.frombuffer(original, np.uint8), cv2.IMREAD_COLOR)
    after = cv2.imdecode(np.frombuffer(redacted, np.uint8), cv2.IMREAD_COLOR)
    assert before.shape == after.shape
    for box in GT[name]["boxes"]:
        x, y, w, h = (round(box[k]) for k in ("x", "y", "w", "h"))
        diff = np.abs(
            before[y : y + h, x : x + w].astype(int) - after[y : y + h, x : x + w].astype(int)
        )
        assert diff.mean() > 8, (name, box)  # every labelled face/plate visibly changed


def test_tampered_original_is_quarantined_not_released(ctx, dataset) -> None:
    asset_id = _ingest(ctx, dataset, FACES)
    with transaction(ctx.engine) as s:
        asset = s.get(Asset, asset_id)
        assert asset is not None and asset.original_blob
        blob = bytearray(ctx.store.get(asset.original_blob))
    blob[-1] ^= 0xFF
    ctx.store.put(asset.original_blob, bytes(blob))

    class MustNotRun:
        def redact(self, data: bytes):  # noqa: ARG002  (reaching it fails the test)
            raise AssertionError("tampered data must never reach redaction")

    drain(ctx, redactor=MustNotRun())
    with transaction(ctx.engine) as s:
        asset = s.get(Asset, asset_id)
        assert asset is not None and asset.state == AssetState.QUARANTINED
        assert asset.reasons[-1]["code"] == "integrity-failure"
        assert asset.redacted_blob is None
