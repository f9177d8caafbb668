"""Nothing outside the metadata allowlist survives release, as the real exiftool sees it."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.core.db import transaction
from gateway.core.models import Asset, AssetState, Dataset
from gateway.ingest import Upload, ingest_upload
from gateway.lineage import Actor
from gateway.pipeline import RedactionOutcome, drain
from gateway.pseudonymisation.policy import FileMetadata, PseudonymisationPolicy
from gateway.pseudonymisation.task_meta import task_metadata
from redaction.io import decode_image, encode_image
from redaction.metadata import disallowed_metadata, metadata_inventory, read_facts
from redaction.policy import Limits
from redaction.types import ImageFormat
from tests.pseudonymisation.exiftool_fixtures import (
    FORMATS,
    SECRETS,
    not_structural,
    read_tags,
    write_tagged_photos,
)
from tests.pseudonymisation.test_task_metadata import _set_policy

EXPECTED_IN_INPUT = {
    "jpeg": ("GPS:", "XMP-dc:", "IPTC:", "MakerNote", "File:Comment", "IFD1:ThumbnailImage"),
    "png": ("GPS:", "XMP-dc:", "IPTC:", "MakerNote", "PNG:Comment", "IFD1:ThumbnailImage"),
    "webp": ("GPS:", "XMP-dc:", "MakerNote", "IFD1:ThumbnailImage"),
    "tiff": ("GPS:", "XMP-dc:", "IPTC:", "MakerNote"),
}


@pytest.fixture(scope="module")
def tagged(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return write_tagged_photos(tmp_path_factory.mktemp("tagged"))


def _assert_clean(path: Path) -> None:
    data = path.read_bytes()
    assert disallowed_metadata(data, allowed=()) == []
    assert not_structural(read_tags(path)) == {}
    for secret in SECRETS:
        assert secret.encode() not in data


@pytest.mark.parametrize("fmt", FORMATS)
def test_fixtures_carry_every_kind_of_metadata(tagged, fmt) -> None:
    tags = read_tags(tagged[fmt])
    for wanted in EXPECTED_IN_INPUT[fmt]:
        assert any(wanted in key for key in tags), (fmt, wanted)
    assert tags["IFD0:Orientation"] == "Rotate 90 CW"
    assert metadata_inventory(tagged[fmt].read_bytes())  # our own walk sees it too


@pytest.mark.parametrize("fmt", FORMATS)
def test_facts_are_read_from_the_original_before_re_encoding(tagged, fmt) -> None:
    facts = read_facts(tagged[fmt].read_bytes())
    assert facts.orientation == 6 and facts.had_gps
    assert facts.device_serial == "SN-998877"
    assert facts.camera_model == "EX-1" and facts.icc_profile is not None
    assert facts.capture_time is not None and facts.capture_time.isoformat() == (
        "2024-06-14T09:41:07"
    )


@pytest.mark.parametrize("out_fmt", list(ImageFormat))
@pytest.mark.parametrize("fmt", FORMATS)
def test_re_encoded_output_keeps_nothing(tagged, fmt, out_fmt, tmp_path) -> None:
    decoded = decode_image(tagged[fmt].read_bytes(), limits=Limits())
    out = tmp_path / f"out.{out_fmt.value}"
    out.write_bytes(encode_image(decoded.pixels, fmt=out_fmt))
    _assert_clean(out)
    tags = read_tags(out)
    size = tags.get("Composite:ImageSize")
    assert size == "242x400"  # orientation 6 applied to the pixels, not carried as a tag


def _ingest_all(ctx, dataset, tagged) -> list[str]:
    ids = []
    with transaction(ctx.engine) as s:
        ds = s.get(Dataset, dataset.id)
        for fmt, path in tagged.items():
            upload = Upload(filename=f"jane_doe_{fmt}.{fmt}", data=path.read_bytes())
            ids.append(ingest_upload(s, ctx, ds, upload, actor=Actor("cli", "t")).asset_id)
    return ids


@pytest.mark.db
@pytest.mark.integration
def test_gateway_releases_clean_files_and_allowed_facts_only(ctx, dataset, tagged, tmp_path):
    from gateway.redactor import IsolatedRedactor

    ids = _ingest_all(ctx, dataset, tagged)
    redactor = IsolatedRedactor(ctx.settings)
    try:
        assert drain(ctx, redactor=redactor) == len(ids)
    finally:
        redactor.close()
    with transaction(ctx.engine) as s:
        for asset_id in ids:
            asset = s.get(Asset, asset_id)
            assert asset.state == AssetState.RELEASED, asset.reasons
            out = tmp_path / f"{asset_id}.jpg"
            out.write_bytes(ctx.store.get(asset.redacted_blob))
            _assert_clean(out)
            meta = task_metadata(ctx, s, asset)
            assert meta["width"] == 242 and meta["height"] == 400
            assert meta["capture_time"] == "2024-06"
            assert not {"camera_make", "camera_model"} & set(meta)
            assert all(secret not in str(meta) for secret in (*SECRETS, "jane", "EX-1"))


class ReturnsTheOriginal:
    """A redactor with a bug: it releases the input bytes, metadata and all."""

    def redact(self, data: bytes) -> RedactionOutcome:
        return RedactionOutcome(released=True, output=data, extension="jpg")


class ReturnsCleanPixels:
    def redact(self, data: bytes) -> RedactionOutcome:
        pixels = decode_image(data, limits=Limits()).pixels
        return RedactionOutcome(released=True, output=encode_image(pixels), extension="jpg")


@pytest.mark.db
def test_metadata_gate_quarantines_a_leaky_output(ctx, dataset, tagged) -> None:
    ids = _ingest_all(ctx, dataset, {"jpeg": tagged["jpeg"]})
    assert drain(ctx, redactor=ReturnsTheOriginal()) == 1
    with transaction(ctx.engine) as s:
        asset = s.get(Asset, ids[0])
    assert asset.state == AssetState.QUARANTINED
    assert asset.reasons[0]["code"] == "metadata-not-allowed"
    assert asset.redacted_blob is None


@pytest.mark.db
def test_allowlisted_icc_profile_is_the_only_metadata_kept(ctx, dataset, tagged, tmp_path):
    _set_policy(
        ctx, dataset, PseudonymisationPolicy(file_allowlist=frozenset({FileMetadata.ICC_PROFILE}))
    )
    ids = _ingest_all(ctx, dataset, {"png": tagged["png"]})
    assert drain(ctx, redactor=ReturnsCleanPixels()) == 1
    with transaction(ctx.engine) as s:
        asset = s.get(Asset, ids[0])
    assert asset.state == AssetState.RELEASED, asset.reasons
    out = tmp_path / "icc.jpg"
    out.write_bytes(ctx.store.get(asset.redacted_blob))
    assert metadata_inventory(out.read_bytes()) == ["icc_profile"]
    tags = read_tags(out)
    assert any(k.startswith("ICC_Profile:") for k in tags)
    leftover = not_structural(
        tags, allow_groups=frozenset({"ICC_Profile", "ICC-header", "ICC-chrm"})
    )
    assert leftover == {}
