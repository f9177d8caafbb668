"""Task metadata carries only pseudonymous, policy-allowed facts of an asset."""

from __future__ import annotations

import io
import json
import uuid

import pytest
from PIL import Image

from gateway.core.db import transaction
from gateway.core.errors import GatewayError
from gateway.core.models import Asset, Dataset, PolicyVersion
from gateway.ingest import Upload, ingest_upload
from gateway.lineage import Actor
from gateway.policy.governing import DEFAULT_POLICY_FILE
from gateway.policy.loader import load_policy_file
from gateway.pseudonymisation.policy import (
    CaptureTimeGranularity,
    PseudonymField,
    PseudonymisationPolicy,
)
from gateway.pseudonymisation.tables import VaultEntry
from gateway.pseudonymisation.task_meta import pseudonym, task_metadata

pytestmark = pytest.mark.db


def exif_jpeg() -> bytes:
    exif = Image.Exif()
    exif[0x010F] = "Canon"
    exif[0x0110] = "Canon EOS 5D"
    exif[0x0112] = 6  # rotated: stored 40x30, shown 30x40
    ifd = exif.get_ifd(0x8769)
    ifd[0x9003] = "2024:06:14 09:41:07"
    ifd[0xA431] = "SN-1234567"
    exif.get_ifd(0x8825)[2] = (52.0, 31.0, 12.0)
    buf = io.BytesIO()
    Image.new("RGB", (40, 30), (120, 60, 30)).save(buf, "JPEG", exif=exif.tobytes())
    return buf.getvalue()


def _ingest(ctx, dataset, **upload) -> Asset:
    with transaction(ctx.engine) as s:
        ds = s.get(Dataset, dataset.id)
        out = ingest_upload(s, ctx, ds, Upload(**upload), actor=Actor("cli", "test"))
    with transaction(ctx.engine) as s:
        asset = s.get(Asset, out.asset_id)
    assert asset is not None
    return asset


def _set_policy(ctx, dataset, policy: PseudonymisationPolicy | dict) -> None:
    document = load_policy_file(DEFAULT_POLICY_FILE).model_dump(mode="json")
    section = policy if isinstance(policy, dict) else policy.model_dump(mode="json")
    with transaction(ctx.engine) as s:
        version = PolicyVersion(
            id=str(uuid.uuid4()),
            name="test",
            version=1,
            digest="0" * 64,
            document=document | {"name": "test", "pseudonymisation": section},
            created_at=ctx.clock(),
            activated_at=ctx.clock(),
        )
        s.add(version)
        s.flush()
        ds = s.get(Dataset, dataset.id)
        ds.policy_version_id = version.id
        s.add(ds)


def test_default_policy_keeps_dimensions_month_and_pseudonyms_only(ctx, dataset) -> None:
    asset = _ingest(
        ctx, dataset, filename="anna_schmidt.jpg", data=exif_jpeg(), subject_id="patient-0042"
    )
    with transaction(ctx.engine) as s:
        meta = task_metadata(ctx, s, asset)
        subject = pseudonym(
            ctx, s, dataset_id=dataset.id, field=PseudonymField.SUBJECT_ID, value="patient-0042"
        )
    assert meta == {
        "width": 30,
        "height": 40,
        "source_format": "jpeg",
        "capture_time": "2024-06",
        "subject_id_pseudonym": subject,
        "file_name_pseudonym": meta["file_name_pseudonym"],
    }
    text = json.dumps(meta)
    for secret in ("anna", "patient-0042", "SN-1234567", "Canon", "09:41"):
        assert secret not in text


def test_policy_allows_camera_model_and_day(ctx, dataset) -> None:
    policy = PseudonymisationPolicy(
        capture_time=CaptureTimeGranularity.DAY,
        camera_model=True,
        task_pseudonyms=frozenset({PseudonymField.DEVICE_SERIAL}),
    )
    _set_policy(ctx, dataset, policy)
    asset = _ingest(ctx, dataset, filename="x.jpg", data=exif_jpeg())
    with transaction(ctx.engine) as s:
        meta = task_metadata(ctx, s, asset)
    assert meta["capture_time"] == "2024-06-14"
    assert meta["camera_make"] == "Canon" and meta["camera_model"] == "Canon EOS 5D"
    assert meta["device_serial_pseudonym"].startswith("dev_")
    assert "file_name_pseudonym" not in meta and "SN-1234567" not in json.dumps(meta)


def test_dropped_capture_time_and_no_vault(ctx, dataset) -> None:
    _set_policy(
        ctx,
        dataset,
        PseudonymisationPolicy(
            capture_time=CaptureTimeGranularity.DROP, reidentification_vault=False
        ),
    )
    asset = _ingest(ctx, dataset, filename="bob.jpg", data=exif_jpeg(), subject_id="s-1")
    with transaction(ctx.engine) as s:
        meta = task_metadata(ctx, s, asset)
        entries = s.exec(VaultEntry.__table__.select()).all()  # type: ignore[attr-defined]
    assert "capture_time" not in meta
    assert entries == []


def test_ingest_puts_identifiers_in_the_vault_only_sealed(ctx, dataset) -> None:
    _ingest(
        ctx,
        dataset,
        filename="carla_rossi.jpg",
        data=exif_jpeg(),
        subject_id="subj-77",
        uploader="ingest@example.org",
    )
    with transaction(ctx.engine) as s:
        from sqlmodel import select

        rows = s.exec(select(VaultEntry)).all()
    assert sorted(r.field for r in rows) == [
        "device_serial",
        "file_name",
        "subject_id",
        "uploader",
    ]
    for row in rows:
        for clear in (b"carla", b"subj-77", b"example.org", b"SN-1234567"):
            assert clear not in row.sealed


def test_broken_policy_section_fails_closed(ctx, dataset) -> None:
    asset = _ingest(ctx, dataset, filename="y.jpg", data=exif_jpeg())
    _set_policy(ctx, dataset, {"capture_time": "second"})
    with transaction(ctx.engine) as s, pytest.raises(GatewayError, match="no longer validates"):
        task_metadata(ctx, s, asset)


def test_stated_capture_time_is_sealed_and_coarsened(ctx, dataset) -> None:
    from datetime import UTC, datetime

    stated = datetime(2023, 2, 3, 4, 5, 6, tzinfo=UTC)
    asset = _ingest(ctx, dataset, filename="t.jpg", data=exif_jpeg(), capture_time=stated)
    assert asset.capture_time is None  # not in clear in the asset row
    with transaction(ctx.engine) as s:
        assert task_metadata(ctx, s, asset)["capture_time"] == "2023-02"  # wins over EXIF
