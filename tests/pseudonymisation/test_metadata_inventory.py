"""The container walk that gates release: it lists what a file holds, and fails closed."""

from __future__ import annotations

import io

import cv2
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


# --- the gate walks the whole container (bugs of its own walker, fixed by the shared one) ----


def _segment(marker: int, body: bytes) -> bytes:
    return bytes([0xFF, marker]) + (len(body) + 2).to_bytes(2, "big") + body


def _progressive() -> bytes:
    ok, buf = cv2.imencode(".jpg", PIXELS, [cv2.IMWRITE_JPEG_PROGRESSIVE, 1])
    assert ok
    return bytes(buf.tobytes())


def test_segments_after_the_first_scan_are_listed() -> None:
    clean = encode_image(PIXELS)
    comment = _segment(0xFE, b"jane doe")
    assert metadata_inventory(clean[:-2] + comment + clean[-2:]) == ["jpeg:COM:jane?doe"]
    progressive = _progressive()
    second_scan = progressive.index(b"\xff\xda", progressive.index(b"\xff\xda") + 2)
    exif = _segment(0xE1, b"Exif\x00\x00MM\x00*" + bytes(16))
    between = progressive[:second_scan] + exif + progressive[second_scan:]
    assert metadata_inventory(between) == ["jpeg:APP1:Exif"]


def test_bytes_after_the_first_end_of_image_are_listed() -> None:
    clean = encode_image(PIXELS)
    assert metadata_inventory(clean + clean) == ["jpeg:trailing-data"]
    exif = _segment(0xE1, b"Exif\x00\x00MM\x00*" + bytes(16))
    with pytest.raises(CorruptImage):  # an image that ends before any scan holds no pixels
        metadata_inventory(b"\xff\xd8\xff\xd9" + exif)
    png = encode_image(PIXELS, fmt=ImageFormat.PNG)
    iend = png.rindex(b"IEND") - 4
    hidden = b"secret"
    iend_with_data = len(hidden).to_bytes(4, "big") + b"IEND" + hidden + bytes(4)
    assert metadata_inventory(png[:iend] + iend_with_data) == ["png:trailing-data"]


def _broken() -> dict[str, bytes]:
    jpeg = encode_image(PIXELS)
    png = encode_image(PIXELS, fmt=ImageFormat.PNG)
    iend = png.rindex(b"IEND") - 4
    webp = encode_image(PIXELS, fmt=ImageFormat.WEBP)
    riff = int.from_bytes(webp[4:8], "little")
    exif_past_the_end = b"EXIF" + (4096).to_bytes(4, "little") + b"MM\x00*"
    return {
        "jpeg-scan-without-its-end": jpeg[:-2],
        "png-iend-past-the-end": png[:iend] + (64).to_bytes(4, "big") + b"IEND",
        "webp-riff-past-the-end": webp[:4] + (riff + 100).to_bytes(4, "little") + webp[8:],
        "webp-chunk-past-the-riff": webp[:4]
        + (riff + len(exif_past_the_end)).to_bytes(4, "little")
        + webp[8:]
        + exif_past_the_end,
    }


@pytest.mark.parametrize("name", sorted(_broken()))
def test_truncated_containers_fail_closed(name: str) -> None:
    with pytest.raises(CorruptImage):
        metadata_inventory(_broken()[name])


def test_fill_bytes_and_standalone_markers_keep_the_walk_in_step() -> None:
    clean = encode_image(PIXELS)
    exif = _segment(0xE1, b"Exif\x00\x00MM\x00*" + bytes(16))
    assert metadata_inventory(clean[:2] + b"\xff\xff\xff" + clean[2:]) == []
    assert metadata_inventory(clean[:2] + b"\xff" + exif + clean[2:]) == ["jpeg:APP1:Exif"]
    # a marker with no payload outside a scan is no structure a clean encode writes: listed
    assert metadata_inventory(clean[:2] + b"\xff\x01" + clean[2:]) == ["jpeg:0x01:-"]
