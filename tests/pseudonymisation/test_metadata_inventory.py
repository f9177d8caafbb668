"""The container walk that gates release: it lists what a file holds, and fails closed."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from redaction.errors import CorruptImage
from redaction.io import encode_image
from redaction.metadata import (
    disallowed_metadata,
    embed_icc_profile_jpeg,
    metadata_inventory,
    read_facts,
)
from redaction.types import ImageFormat

PIXELS = np.full((24, 32, 3), 90, dtype=np.uint8)


@pytest.mark.parametrize("fmt", list(ImageFormat))
def test_clean_encodes_list_nothing(fmt) -> None:
    assert metadata_inventory(encode_image(PIXELS, fmt=fmt)) == []


def test_jfif_thumbnail_comment_and_trailing_bytes_are_listed() -> None:
    clean = encode_image(PIXELS)
    length = int.from_bytes(clean[4:6], "big")
    app0 = bytearray(clean[4 : 4 + length])
    app0[14:16] = b"\x01\x01"  # a 1x1 JFIF thumbnail (3 bytes of RGB follow in real files)
    with_thumb = clean[:4] + bytes(app0) + clean[4 + length :]
    assert metadata_inventory(with_thumb) == ["jpeg:APP0:JFIF"]
    body = b"jane doe x"
    comment = b"\xff\xfe" + (len(body) + 2).to_bytes(2, "big") + body
    assert metadata_inventory(clean[:2] + comment + clean[2:]) == ["jpeg:COM:jane?doe?x"]
    assert metadata_inventory(clean + b"PK\x03\x04hidden") == ["jpeg:trailing-data"]
    png = encode_image(PIXELS, fmt=ImageFormat.PNG)
    assert metadata_inventory(png + b"secret") == ["png:trailing-data"]


def test_unknown_or_broken_containers_fail_closed() -> None:
    with pytest.raises(CorruptImage):
        metadata_inventory(b"GIF89a....")
    with pytest.raises(CorruptImage):
        metadata_inventory(encode_image(PIXELS, fmt=ImageFormat.PNG)[:40])


def test_icc_profile_is_embedded_and_is_the_only_item() -> None:
    from PIL import ImageCms

    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    out = embed_icc_profile_jpeg(encode_image(PIXELS), icc)
    assert metadata_inventory(out) == ["icc_profile"]
    assert disallowed_metadata(out, allowed={"icc_profile"}) == []
    assert disallowed_metadata(out, allowed=()) == ["icc_profile"]
    with Image.open(io.BytesIO(out)) as im:
        assert im.info["icc_profile"] == icc


def test_facts_of_a_file_without_exif_are_empty_not_an_error() -> None:
    facts = read_facts(encode_image(PIXELS))
    assert facts.capture_time is None and facts.device_serial is None and not facts.had_gps
    assert read_facts(b"not an image").orientation == 1
