"""Decoding, validation, orientation and re-encoding of untrusted bytes (redaction.io)."""

from __future__ import annotations

import base64
import io
import struct
import zlib

import cv2
import numpy as np
import pytest
from PIL import Image, ImageCms, ImageFile, ImageOps

from redaction.errors import (
    CorruptImage,
    EmptyInput,
    ImageTooLarge,
    MultiFrameImage,
    UnsupportedFormat,
    UnsupportedPixelFormat,
)
from redaction.io import decode_image, encode_image, read_exif_orientation, sniff_format
from redaction.policy import Limits
from redaction.types import ImageFormat

LIMITS = Limits()
RED, GREEN, BLUE = (0, 0, 255), (0, 255, 0), (255, 0, 0)

# The inverse of each EXIF orientation's correcting transpose (Pillow's exif_transpose mapping).
_STORE_AS = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_90,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_270,
}


def marker_image(height: int = 60, width: int = 90) -> np.ndarray:
    """Black BGR image with red top-left, green top-right and blue bottom-left blocks."""
    img = np.zeros((height, width, 3), np.uint8)
    cv2.rectangle(img, (0, 0), (19, 19), RED, -1)
    cv2.rectangle(img, (width - 20, 0), (width - 1, 19), GREEN, -1)
    cv2.rectangle(img, (0, height - 20), (19, height - 1), BLUE, -1)
    return img


def textured(height: int = 48, width: int = 64, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (height // 4, width // 4, 3), dtype=np.uint8)
    return cv2.resize(small, (width, height), interpolation=cv2.INTER_LINEAR)


def pil_bytes(im: Image.Image, fmt: str, **params: object) -> bytes:
    buf = io.BytesIO()
    im.save(buf, format=fmt, **params)
    return buf.getvalue()


def bgr_to_pil(img: np.ndarray) -> Image.Image:
    return Image.fromarray(cv2.cvtColor(img, cv2.COLOR_BGR2RGB))


def png_from_chunks(width: int, height: int, idat: bytes, *, color_type: int = 2) -> bytes:
    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = zlib.crc32(kind + body)
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, color_type, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(idat))
        + chunk(b"IEND", b"")
    )


def assert_close(actual: np.ndarray, expected: np.ndarray, tolerance: int) -> None:
    assert actual.shape == expected.shape
    assert int(np.abs(actual.astype(int) - expected.astype(int)).max()) <= tolerance


def assert_similar(actual: np.ndarray, expected: np.ndarray, mean_tolerance: float) -> None:
    """For lossy codecs: chroma subsampling moves single pixels far, the mean stays close."""
    assert actual.shape == expected.shape
    assert float(np.abs(actual.astype(float) - expected).mean()) <= mean_tolerance


def assert_upright(pixels: np.ndarray, tolerance: int = 40) -> None:
    assert pixels.shape == (60, 90, 3)
    for (row, col), colour in (((10, 10), RED), ((10, 80), GREEN), ((50, 10), BLUE)):
        assert_close(pixels[row, col], np.array(colour, np.uint8), tolerance)
    assert_close(pixels[50, 80], np.zeros(3, np.uint8), tolerance)


# --- format sniffing and round trips -------------------------------------------------------


@pytest.mark.parametrize(
    ("fmt", "lossless"),
    [
        (ImageFormat.JPEG, False),
        (ImageFormat.PNG, True),
        (ImageFormat.WEBP, False),
        (ImageFormat.TIFF, True),
    ],
)
def test_round_trip_each_format(fmt: ImageFormat, lossless: bool) -> None:
    original = textured()
    encoded = encode_image(original, fmt=fmt, quality=95)
    assert sniff_format(encoded) is fmt
    decoded = decode_image(encoded, limits=LIMITS)
    assert decoded.source_format is fmt
    assert decoded.orientation_applied == 1
    assert decoded.pixels.dtype == np.uint8
    assert decoded.pixels.flags["C_CONTIGUOUS"]
    if lossless:
        assert np.array_equal(decoded.pixels, original)
    else:
        assert_similar(decoded.pixels, original, 8)


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP", "TIFF"])
def test_pillow_written_files_decode(fmt: str) -> None:
    original = textured()
    params = {"lossless": True} if fmt == "WEBP" else {"quality": 95} if fmt == "JPEG" else {}
    decoded = decode_image(pil_bytes(bgr_to_pil(original), fmt, **params), limits=LIMITS)
    assert_similar(decoded.pixels, original, 8 if fmt == "JPEG" else 0)


def test_format_comes_from_bytes_not_name() -> None:
    # e.g. dashcam frames: RGBA PNGs named .jpg. Only the bytes are looked at.
    data = encode_image(marker_image(), fmt=ImageFormat.PNG)
    assert decode_image(data, limits=LIMITS).source_format is ImageFormat.PNG


# --- orientation ---------------------------------------------------------------------------


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_jpeg_comes_out_upright(orientation: int) -> None:
    upright = bgr_to_pil(marker_image())
    stored = upright.transpose(_STORE_AS[orientation]) if orientation > 1 else upright
    exif = Image.Exif()
    exif[0x0112] = orientation
    data = pil_bytes(stored, "JPEG", quality=95, exif=exif.tobytes())
    assert read_exif_orientation(data) == orientation
    decoded = decode_image(data, limits=LIMITS)
    assert decoded.orientation_applied == orientation
    assert_upright(decoded.pixels)


@pytest.mark.parametrize("orientation", range(1, 9))
def test_orientation_matches_pillow_exif_transpose_exactly(orientation: int) -> None:
    stored = bgr_to_pil(textured(40, 70))
    exif = Image.Exif()
    exif[0x0112] = orientation
    data = pil_bytes(stored, "PNG", exif=exif.tobytes())
    with Image.open(io.BytesIO(data)) as im:
        expected = cv2.cvtColor(np.asarray(ImageOps.exif_transpose(im)), cv2.COLOR_RGB2BGR)
    decoded = decode_image(data, limits=LIMITS)
    assert decoded.orientation_applied == orientation
    assert np.array_equal(decoded.pixels, expected)


def test_invalid_orientation_is_ignored_with_a_note() -> None:
    exif = Image.Exif()
    exif[0x0112] = 9
    data = pil_bytes(bgr_to_pil(marker_image()), "JPEG", quality=95, exif=exif.tobytes())
    decoded = decode_image(data, limits=LIMITS)
    assert decoded.orientation_applied == 1
    assert any(note.startswith("exif-orientation-invalid") for note in decoded.notes)
    assert_upright(decoded.pixels)


# --- pixel formats -------------------------------------------------------------------------


def test_grayscale_png_and_jpeg() -> None:
    gray = cv2.cvtColor(textured(), cv2.COLOR_BGR2GRAY)
    for fmt, tolerance in (("PNG", 0), ("JPEG", 2)):
        params = {"quality": 95} if fmt == "JPEG" else {}
        decoded = decode_image(pil_bytes(Image.fromarray(gray), fmt, **params), limits=LIMITS)
        assert_similar(decoded.pixels, cv2.cvtColor(gray, cv2.COLOR_GRAY2BGR), tolerance)
        assert not decoded.had_alpha


def test_bilevel_png() -> None:
    gray = np.where(cv2.cvtColor(textured(), cv2.COLOR_BGR2GRAY) > 127, 255, 0).astype(np.uint8)
    data = pil_bytes(Image.fromarray(gray).convert("1"), "PNG")
    decoded = decode_image(data, limits=LIMITS)
    assert np.array_equal(decoded.pixels, cv2.cvtColor(gray, cv2.COLOR_GRAY2BGR))


def test_rgba_is_flattened_onto_black() -> None:
    rgba = np.zeros((10, 20, 4), np.uint8)
    rgba[..., :3] = (200, 100, 50)
    rgba[:, :10, 3] = 255
    rgba[:, 10:, 3] = 0  # hidden pixels must not be revealed
    decoded = decode_image(pil_bytes(Image.fromarray(rgba, "RGBA"), "PNG"), limits=LIMITS)
    assert decoded.had_alpha
    assert "alpha-flattened-on-black" in decoded.notes
    assert (decoded.pixels[:, :10] == (50, 100, 200)).all()
    assert (decoded.pixels[:, 10:] == 0).all()


def test_half_transparent_la_and_opaque_rgba() -> None:
    la = np.dstack([np.full((8, 8), 200, np.uint8), np.full((8, 8), 128, np.uint8)])
    decoded = decode_image(pil_bytes(Image.fromarray(la, "LA"), "PNG"), limits=LIMITS)
    assert (decoded.pixels == 100).all()
    opaque = np.dstack([cv2.cvtColor(textured(), cv2.COLOR_BGR2RGB), np.full((48, 64), 255)])
    image = Image.fromarray(opaque.astype(np.uint8), "RGBA")
    decoded = decode_image(pil_bytes(image, "PNG"), limits=LIMITS)
    assert decoded.had_alpha and decoded.notes == ()
    assert np.array_equal(decoded.pixels, textured())


def test_palette_with_and_without_transparency() -> None:
    image = bgr_to_pil(marker_image()).convert("P", palette=Image.Palette.ADAPTIVE, colors=8)
    assert_upright(decode_image(pil_bytes(image, "PNG"), limits=LIMITS).pixels, tolerance=0)
    black_index = image.getpixel((50, 50))
    decoded = decode_image(pil_bytes(image, "PNG", transparency=black_index), limits=LIMITS)
    assert decoded.had_alpha
    assert_upright(decoded.pixels, tolerance=0)  # transparent black flattened onto black


def test_sixteen_bit_gray_png_and_big_endian_tiff_scale_to_eight_bit() -> None:
    values = (np.arange(40 * 50, dtype=np.uint32).reshape(40, 50) * 33 % 65536).astype(np.uint16)
    expected = cv2.cvtColor((values >> 8).astype(np.uint8), cv2.COLOR_GRAY2BGR)
    png = cv2.imencode(".png", values)[1].tobytes()
    assert np.array_equal(decode_image(png, limits=LIMITS).pixels, expected)
    big_endian = Image.frombytes("I;16B", (50, 40), values.astype(">u2").tobytes())
    tiff = pil_bytes(big_endian, "TIFF")
    assert np.array_equal(decode_image(tiff, limits=LIMITS).pixels, expected)


@pytest.mark.parametrize("ext", [".png", ".tiff"])
def test_sixteen_bit_rgb_scales_to_eight_bit(ext: str) -> None:
    values = textured().astype(np.uint16) * 257 + 3
    data = cv2.imencode(ext, values)[1].tobytes()
    assert_close(decode_image(data, limits=LIMITS).pixels, textured(), 1)


@pytest.mark.parametrize("fmt", ["JPEG", "TIFF"])
def test_cmyk_is_converted_to_rgb(fmt: str) -> None:
    image = bgr_to_pil(marker_image())
    data = pil_bytes(image.convert("CMYK"), fmt, **({"quality": 95} if fmt == "JPEG" else {}))
    assert_upright(decode_image(data, limits=LIMITS).pixels)


def test_float_pixels_are_refused() -> None:
    data = pil_bytes(Image.fromarray(np.zeros((8, 8), np.float32), "F"), "TIFF")
    with pytest.raises(UnsupportedPixelFormat):
        decode_image(data, limits=LIMITS)


# --- the bad corpus ------------------------------------------------------------------------


def test_empty_input() -> None:
    with pytest.raises(EmptyInput):
        decode_image(b"", limits=LIMITS)


def test_byte_cap_is_checked_before_anything_else() -> None:
    with pytest.raises(ImageTooLarge):
        decode_image(b"\x00" * 101, limits=Limits(max_bytes=100))


@pytest.mark.parametrize("fmt", [ImageFormat.JPEG, ImageFormat.PNG, ImageFormat.WEBP])
@pytest.mark.parametrize("load_truncated", [False, True])
def test_truncated_files_are_refused(
    fmt: ImageFormat, load_truncated: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Refused even when some library switched on Pillow's LOAD_TRUNCATED_IMAGES.
    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", load_truncated)
    data = encode_image(textured(200, 300, seed=3), fmt=fmt)
    with pytest.raises(CorruptImage):
        decode_image(data[: len(data) * 2 // 3], limits=LIMITS)


def test_truncated_tiff_is_refused() -> None:
    data = pil_bytes(bgr_to_pil(textured()), "TIFF")
    with pytest.raises(CorruptImage):
        decode_image(data[: len(data) - 100], limits=LIMITS)


# found by atheris in CI: a strip offset table typed BYTE (Pillow hands back bytes, not ints)
# crashed the completeness check with a ValueError instead of a typed refusal
TIFF_BYTE_TYPED_STRIP_OFFSETS = base64.b64decode(
    "SUkqAAgAAAAKAAABBAABAAAAIAAAAAEBBAABAAAAGAAAAAIBAwADAAAAhgAAAAMBAwABAAAAAQAAAAYBAwABAAAAAgAA"
    "ABEBAQABAAAAjAAAABUBAwABAAAAAwAAABYBBAABAAAAGAAAABcBBAABAAAAAAkAAOT+/P/+////AAAAAAAAAAAIAAgA"
    "CABegcHYzuoOoiDW2IH3vA9Et+e+VY4GC5VeQr/aCN/XjMw="
)


def test_tiff_with_a_non_integer_strip_table_is_refused_as_corrupt() -> None:
    with pytest.raises(CorruptImage):
        decode_image(TIFF_BYTE_TYPED_STRIP_OFFSETS, limits=LIMITS)


def test_png_with_bogus_size_header() -> None:
    data = bytearray(encode_image(textured(), fmt=ImageFormat.PNG))
    for width, height, error in ((9000, 9000, ImageTooLarge), (2000, 1500, CorruptImage)):
        data[16:24] = struct.pack(">II", width, height)
        data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
        with pytest.raises(error):
            decode_image(bytes(data), limits=LIMITS)


@pytest.mark.parametrize("side", [30000, 10000])
def test_decompression_bomb_is_refused_without_allocating(side: int) -> None:
    # 30000^2 trips Pillow's hard limit, 10000^2 only its warning: neither may escape.
    bomb = png_from_chunks(side, side, b"\x00" * 1000)
    assert len(bomb) < 200
    for limits in (LIMITS, Limits(max_pixels=10**10)):
        with pytest.raises(ImageTooLarge):
            decode_image(bomb, limits=limits)


@pytest.mark.parametrize(
    ("data", "looks_like"),
    [
        (b"GIF89a\x01\x00\x01\x00\x00\x00\x00;", "GIF"),
        (b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg"/>', "SVG"),
        (b"%PDF-1.7\n", "PDF"),
        (b"BM" + b"\x00" * 60, "BMP"),
        (b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic", "HEIC"),
        (b"PK\x03\x04" + b"\x00" * 30, "ZIP"),
        (b"<!DOCTYPE html><html></html>", "HTML"),
        (b"hello", "unrecognised"),
    ],
)
def test_unsupported_formats_are_named(data: bytes, looks_like: str) -> None:
    with pytest.raises(UnsupportedFormat) as caught:
        decode_image(data, limits=LIMITS)
    assert looks_like in caught.value.details["looks_like"]


def test_real_gif_and_bmp_are_refused() -> None:
    for fmt in ("GIF", "BMP"):
        with pytest.raises(UnsupportedFormat):
            decode_image(pil_bytes(bgr_to_pil(marker_image()), fmt), limits=LIMITS)


def test_gif_javascript_polyglot_is_refused() -> None:
    polyglot = b"GIF89a/*\x01\x00\x01\x00\x00\x00\x00*/=1;alert(document.domain);//;"
    with pytest.raises(UnsupportedFormat):
        decode_image(polyglot, limits=LIMITS)


def test_jpeg_magic_followed_by_html_is_refused() -> None:
    polyglot = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
    polyglot += b"<html><script>alert(1)</script></html>"
    with pytest.raises(CorruptImage):
        decode_image(polyglot, limits=LIMITS)


def test_jpeg_with_appended_zip_decodes_and_the_payload_never_leaves() -> None:
    payload = b"PK\x03\x04" + b"secret-payload" * 20
    data = encode_image(marker_image()) + payload
    decoded = decode_image(data, limits=LIMITS)
    assert f"trailing-data:{len(payload)}" in decoded.notes
    assert_upright(decoded.pixels)
    assert b"secret-payload" not in encode_image(decoded.pixels)


def test_multi_page_tiff_is_refused() -> None:
    pages = [bgr_to_pil(marker_image()), bgr_to_pil(textured(60, 90))]
    data = pil_bytes(pages[0], "TIFF", save_all=True, append_images=pages[1:])
    with pytest.raises(MultiFrameImage):
        decode_image(data, limits=LIMITS)


@pytest.mark.parametrize("fmt", ["WEBP", "PNG"])
def test_animations_are_refused(fmt: str) -> None:
    frames = [bgr_to_pil(marker_image()), bgr_to_pil(textured(60, 90))]
    data = pil_bytes(frames[0], fmt, save_all=True, append_images=frames[1:], duration=100)
    with pytest.raises(MultiFrameImage):
        decode_image(data, limits=LIMITS)


def test_mpo_keeps_the_primary_image_only() -> None:
    frames = [bgr_to_pil(marker_image()), bgr_to_pil(textured(60, 90))]
    data = pil_bytes(frames[0], "MPO", save_all=True, append_images=frames[1:], quality=95)
    decoded = decode_image(data, limits=LIMITS)
    assert "mpo-secondary-images-dropped" in decoded.notes
    assert_upright(decoded.pixels)


# --- re-encoding carries no metadata -------------------------------------------------------

_METADATA_KEYS = {"exif", "icc_profile", "xmp", "XML:com.adobe.xmp", "comment", "photoshop"}
_TIFF_STRUCTURAL_TAGS = {256, 257, 258, 259, 262, 273, 277, 278, 279, 284, 317, 339}


@pytest.mark.parametrize("fmt", list(ImageFormat))
def test_re_encoded_output_has_no_metadata(fmt: ImageFormat) -> None:
    exif = Image.Exif()
    exif[0x0112] = 6
    exif[0x010F] = "SecretCam"  # Make
    exif[0x013B] = "Jane Doe"  # Artist
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    source = pil_bytes(
        bgr_to_pil(marker_image()),
        "JPEG",
        exif=exif.tobytes(),
        icc_profile=icc,
        comment=b"Jane Doe at home",
        xmp=b"<x:xmpmeta>Jane Doe</x:xmpmeta>",
    )
    out = encode_image(decode_image(source, limits=LIMITS).pixels, fmt=fmt)
    for secret in (b"Jane", b"SecretCam", b"Exif", b"ICC_PROFILE", b"xmpmeta"):
        assert secret not in out
    with Image.open(io.BytesIO(out)) as im:
        assert not _METADATA_KEYS & set(im.info)
        assert len(im.getexif()) == 0 or fmt is ImageFormat.TIFF
        if fmt is ImageFormat.PNG:
            assert im.text == {}  # type: ignore[attr-defined]
        if fmt is ImageFormat.TIFF:
            assert set(im.tag_v2) <= _TIFF_STRUCTURAL_TAGS  # type: ignore[attr-defined]


def test_encode_refuses_bad_arguments() -> None:
    with pytest.raises(ValueError, match="quality"):
        encode_image(marker_image(), quality=0)
    with pytest.raises(ValueError, match="HxWx3"):
        encode_image(np.zeros((4, 4), np.uint8))
