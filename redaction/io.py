"""Decoding, validation, orientation and metadata-free re-encoding of untrusted image bytes.

The format is decided from magic bytes alone, never from a file name or a content type. Every
check that can refuse an input runs before pixels are decoded: byte cap, format, header
dimensions (decompression bombs), frame count, and a structural walk proving the file is
complete (so a truncated image is refused even if some library has switched on Pillow's
``LOAD_TRUNCATED_IMAGES``). Decoded pixels come back upright (EXIF orientation baked in) as
contiguous BGR uint8, ready for detectors; re-encoding writes pixels and nothing else.

Transparency is flattened onto black (premultiplication): pixels an author made invisible are
never revealed, no colour is invented, and the released image is exactly what detectors saw.
"""

from __future__ import annotations

import io
import warnings
from typing import Final

import cv2
import numpy as np
import numpy.typing as npt
from PIL import ExifTags, Image, ImageFile

from redaction.containers import PNG_SIGNATURE, truncated, walk_jpeg, walk_png, webp_end
from redaction.errors import (
    CorruptImage,
    EmptyInput,
    ImageTooLarge,
    MultiFrameImage,
    UnsupportedFormat,
    UnsupportedPixelFormat,
)
from redaction.policy import Limits
from redaction.types import BGRImage, DecodedImage, ImageFormat

_SUPPORTED_MAGIC: Final[tuple[tuple[bytes, ImageFormat], ...]] = (
    (b"\xff\xd8\xff", ImageFormat.JPEG),
    (PNG_SIGNATURE, ImageFormat.PNG),
    (b"II*\x00", ImageFormat.TIFF),
    (b"MM\x00*", ImageFormat.TIFF),
    (b"II+\x00", ImageFormat.TIFF),  # BigTIFF
    (b"MM\x00+", ImageFormat.TIFF),
)

_KNOWN_UNSUPPORTED: Final[tuple[tuple[bytes, str], ...]] = (
    (b"GIF87a", "GIF"),
    (b"GIF89a", "GIF"),
    (b"BM", "BMP"),
    (b"%PDF", "PDF"),
    (b"PK\x03\x04", "ZIP archive"),
    (b"PK\x05\x06", "ZIP archive"),
    (b"\x00\x00\x01\x00", "ICO"),
    (b"8BPS", "Photoshop PSD"),
    (b"\xff\x0a", "JPEG XL"),
    (b"\x00\x00\x00\x0cJXL ", "JPEG XL"),
    (b"\x00\x00\x00\x0cjP  ", "JPEG 2000"),
    (b"\x1f\x8b", "gzip"),
    (b"MZ", "Windows executable"),
    (b"\x7fELF", "ELF executable"),
)

_PIL_FORMAT: Final[dict[ImageFormat, str]] = {
    ImageFormat.JPEG: "JPEG",
    ImageFormat.PNG: "PNG",
    ImageFormat.WEBP: "WEBP",
    ImageFormat.TIFF: "TIFF",
}

_ENCODE_EXT: Final[dict[ImageFormat, str]] = {
    ImageFormat.JPEG: ".jpg",
    ImageFormat.PNG: ".png",
    ImageFormat.WEBP: ".webp",
    ImageFormat.TIFF: ".tiff",
}

_TIFF_DATA_TAGS: Final = ((273, 279), (324, 325))  # (strip|tile offsets, byte counts)


def sniff_format(data: bytes) -> ImageFormat:
    """The format of `data`, from its magic bytes only; raises for anything not supported."""
    if not data:
        raise EmptyInput("The file is empty (0 bytes).")
    for magic, fmt in _SUPPORTED_MAGIC:
        if data.startswith(magic):
            return fmt
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return ImageFormat.WEBP
    looks_like = _describe_unsupported(data)
    raise UnsupportedFormat(
        f"Unsupported file format ({looks_like}); send JPEG, PNG, WebP or TIFF.",
        looks_like=looks_like,
    )


def _describe_unsupported(data: bytes) -> str:
    for magic, name in _KNOWN_UNSUPPORTED:
        if data.startswith(magic):
            return name
    if data[4:8] == b"ftyp":
        brand = data[8:12].decode("ascii", "replace")
        return "AVIF" if brand.startswith("avi") else f"HEIC/ISO media (brand {brand!r})"
    head = data[:512].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if b"<svg" in head:
        return "SVG"
    if head.startswith((b"<!doctype html", b"<html")):
        return "HTML"
    if head.startswith(b"<?xml"):
        return "XML"
    return "unrecognised data"


def read_exif_orientation(data: bytes) -> int:
    """The EXIF orientation (1-8) of a supported image; 1 when absent or invalid."""
    fmt = sniff_format(data)
    with Image.open(io.BytesIO(data), formats=[_PIL_FORMAT[fmt]]) as im:
        value, _ = _exif_orientation(im)
    return value


def decode_image(data: bytes, *, limits: Limits) -> DecodedImage:
    """Validate and decode untrusted bytes into an upright BGR image, or raise an InputError."""
    if len(data) > limits.max_bytes:
        raise ImageTooLarge(
            f"The file is {len(data)} bytes; the limit is {limits.max_bytes}.",
            size_bytes=len(data),
            max_bytes=limits.max_bytes,
        )
    fmt = sniff_format(data)
    # weasyprint (PDF reports) switches this process-wide flag on at import; with it Pillow
    # fills missing pixel data with black instead of failing: never for untrusted bytes
    ImageFile.LOAD_TRUNCATED_IMAGES = False
    with _open_checked(data, fmt, limits=limits) as im:
        return _decode_opened(data, fmt, im)


def _decode_opened(data: bytes, fmt: ImageFormat, im: Image.Image) -> DecodedImage:
    notes = list(_check_complete(data, fmt, im))
    if im.format == "MPO":
        notes.append("mpo-secondary-images-dropped")
    if fmt is ImageFormat.JPEG and im.mode in ("L", "RGB"):
        pixels, had_alpha = _decode_jpeg_cv2(data, size=im.size), False
    else:
        pixels, had_alpha, more = _decode_pillow(im)
        notes.extend(more)
    orientation, more = _exif_orientation(im)
    notes.extend(more)
    return DecodedImage(
        pixels=_orient(pixels, orientation),
        source_format=fmt,
        orientation_applied=orientation,
        had_alpha=had_alpha,
        notes=tuple(notes),
    )


def _open_checked(data: bytes, fmt: ImageFormat, *, limits: Limits) -> Image.Image:
    """Read the header lazily and refuse bombs and multi-frame files before any pixel decode."""
    try:
        # Pillow's own bomb check warns above MAX_IMAGE_PIXELS; make that a refusal too.
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            im = Image.open(io.BytesIO(data), formats=[_PIL_FORMAT[fmt]])
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageTooLarge(f"The image header declares too many pixels: {exc}") from exc
    except Exception as exc:  # any decoder failure on untrusted bytes means corrupt
        raise CorruptImage(f"The {fmt.value.upper()} file cannot be read: {exc}") from exc
    width, height = im.size
    if width <= 0 or height <= 0:
        raise CorruptImage(f"The image declares an empty size {width}x{height}.")
    if width * height > limits.max_pixels:
        raise ImageTooLarge(
            f"The image is {width}x{height} pixels; the limit is {limits.max_pixels} pixels.",
            width=width,
            height=height,
            max_pixels=limits.max_pixels,
        )
    try:
        frames = int(getattr(im, "n_frames", 1))
    except Exception as exc:
        raise CorruptImage(f"The {fmt.value.upper()} frame list cannot be read: {exc}") from exc
    if frames > 1 and im.format != "MPO":
        raise MultiFrameImage(
            f"The file holds {frames} frames (animation or pages); send a single still image.",
            frames=frames,
        )
    return im


def _check_complete(data: bytes, fmt: ImageFormat, im: Image.Image) -> tuple[str, ...]:
    """Prove the file holds all the bytes it declares; return notes on trailing data."""
    match fmt:
        case ImageFormat.JPEG:
            end = walk_jpeg(data).end
        case ImageFormat.PNG:
            end = walk_png(data).end
        case ImageFormat.WEBP:  # where it ends is all this needs: libwebp reads the chunks
            end = webp_end(data)
        case ImageFormat.TIFF:
            _check_tiff_data(data, im)
            end = len(data)
    trailing = len(data) - end
    # Bytes after the image (phone gain maps, motion-photo videos, polyglot payloads) are never
    # re-emitted: only decoded pixels leave. Record them so the caller can log the fact.
    return (f"trailing-data:{trailing}",) if trailing else ()


def _check_tiff_data(data: bytes, im: Image.Image) -> None:
    tags = getattr(im, "tag_v2", {})
    for offsets_tag, counts_tag in _TIFF_DATA_TAGS:
        offsets, counts = _as_ints(tags.get(offsets_tag)), _as_ints(tags.get(counts_tag))
        if len(offsets) != len(counts):
            raise CorruptImage("The TIFF file is corrupt (pixel data table mismatch).")
        if any(o + c > len(data) for o, c in zip(offsets, counts, strict=True)):
            raise truncated("TIFF")


def _as_ints(value: object) -> tuple[int, ...]:
    """A strip/tile table as integers; anything else (a BYTE-typed tag read as bytes, a
    rational, text) is a malformed file, refused rather than guessed at."""
    if value is None:
        return ()
    items = value if isinstance(value, tuple) else (value,)
    if not all(isinstance(item, int) and not isinstance(item, bool) for item in items):
        raise CorruptImage("The TIFF file is corrupt (pixel data table is not integers).")
    return tuple(int(item) for item in items)


def _decode_jpeg_cv2(data: bytes, *, size: tuple[int, int]) -> BGRImage:
    """libjpeg-turbo through OpenCV: about twice as fast as Pillow's decode + RGB->BGR copy."""
    flags = cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION
    pixels = cv2.imdecode(np.frombuffer(data, np.uint8), flags)
    if pixels is None or (pixels.shape[1], pixels.shape[0]) != size:
        raise CorruptImage("The JPEG file cannot be decoded; send the complete, valid file.")
    return _u8(pixels)


def _decode_pillow(im: Image.Image) -> tuple[BGRImage, bool, tuple[str, ...]]:
    try:
        im.load()
    except Exception as exc:
        raise CorruptImage(f"The image cannot be decoded: {exc}") from exc
    if "transparency" in im.info and im.mode in ("P", "L", "RGB"):
        im = im.convert("RGBA")
    elif im.mode == "P":
        im = im.convert("RGB")
    elif im.mode == "PA":
        im = im.convert("RGBA")
    elif im.mode == "1":
        im = im.convert("L")
    elif im.mode in ("CMYK", "YCbCr", "LAB", "HSV"):
        try:
            im = im.convert("RGB")
        except ValueError as exc:
            raise UnsupportedPixelFormat(f"Pixel mode {im.mode} cannot be converted.") from exc
    return _array_to_bgr(np.asarray(im), im.mode)


def _array_to_bgr(
    arr: npt.NDArray[np.generic], mode: str
) -> tuple[BGRImage, bool, tuple[str, ...]]:
    if mode.startswith("I;16") or mode == "I":
        return _u8(cv2.cvtColor(_sixteen_to_eight(arr, mode), cv2.COLOR_GRAY2BGR)), False, ()
    if arr.dtype != np.uint8 or mode not in ("L", "LA", "La", "RGB", "RGBX", "RGBA", "RGBa"):
        raise UnsupportedPixelFormat(
            f"Pixel mode {mode} is not supported; send 8- or 16-bit grey, RGB or CMYK.",
            mode=mode,
        )
    pixels = np.asarray(arr, dtype=np.uint8)
    if mode == "L":
        return _u8(cv2.cvtColor(pixels, cv2.COLOR_GRAY2BGR)), False, ()
    colour = pixels[..., :1] if mode in ("LA", "La") else pixels[..., :3]
    notes: tuple[str, ...] = ()
    if mode in ("LA", "RGBA"):  # straight alpha: premultiply, i.e. flatten onto black
        alpha = pixels[..., -1:]
        if int(alpha.min()) < 255:
            wide = colour.astype(np.uint16) * alpha + 127
            colour = (wide // 255).astype(np.uint8)
            notes = ("alpha-flattened-on-black",)
    code = cv2.COLOR_GRAY2BGR if colour.shape[-1] == 1 else cv2.COLOR_RGB2BGR
    bgr = _u8(cv2.cvtColor(np.ascontiguousarray(colour), code))
    return bgr, mode not in ("L", "RGB", "RGBX"), notes


def _sixteen_to_eight(arr: npt.NDArray[np.generic], mode: str) -> npt.NDArray[np.uint8]:
    values = arr.astype(np.int64)
    if mode == "I" and (int(values.min()) < 0 or int(values.max()) > 0xFFFF):
        raise UnsupportedPixelFormat("32-bit integer pixels outside 0-65535 are not supported.")
    return np.ascontiguousarray(values >> 8, dtype=np.uint8)


def _exif_orientation(im: Image.Image) -> tuple[int, tuple[str, ...]]:
    try:
        value = im.getexif().get(ExifTags.Base.Orientation, 1)
    except Exception:  # unreadable EXIF: show the pixels as stored, as browsers do
        return 1, ("exif-unreadable",)
    if isinstance(value, int) and 1 <= value <= 8:
        return value, ()
    return 1, (f"exif-orientation-invalid:{value!r}",)


def _orient(pixels: BGRImage, orientation: int) -> BGRImage:
    """Make the image upright; the same mapping as Pillow's ImageOps.exif_transpose."""
    match orientation:
        case 2:
            out = cv2.flip(pixels, 1)
        case 3:
            out = cv2.rotate(pixels, cv2.ROTATE_180)
        case 4:
            out = cv2.flip(pixels, 0)
        case 5:
            out = cv2.transpose(pixels)
        case 6:
            out = cv2.rotate(pixels, cv2.ROTATE_90_CLOCKWISE)
        case 7:
            out = cv2.rotate(cv2.transpose(pixels), cv2.ROTATE_180)
        case 8:
            out = cv2.rotate(pixels, cv2.ROTATE_90_COUNTERCLOCKWISE)
        case _:
            out = pixels
    return _u8(out)


def _u8(arr: object) -> BGRImage:
    """An OpenCV result as a contiguous uint8 array (no copy when it already is one)."""
    return np.ascontiguousarray(arr, dtype=np.uint8)


def encode_image(
    pixels: BGRImage, *, fmt: ImageFormat = ImageFormat.JPEG, quality: int = 90
) -> bytes:
    """Encode BGR pixels with no metadata at all: no EXIF, XMP, ICC, comments or text chunks.

    OpenCV's encoders write only what the format requires (JFIF header, IHDR/IDAT, VP8, and the
    structural TIFF tags), which the tests check.
    """
    if pixels.dtype != np.uint8 or pixels.ndim != 3 or pixels.shape[2] != 3:
        raise ValueError(f"expected an HxWx3 uint8 BGR image, got {pixels.dtype} {pixels.shape}")
    if not 1 <= quality <= 100:
        raise ValueError(f"quality must be within 1-100, got {quality}")
    params: list[int] = []
    if fmt is ImageFormat.JPEG:
        params = [cv2.IMWRITE_JPEG_QUALITY, quality]
    elif fmt is ImageFormat.WEBP:
        params = [cv2.IMWRITE_WEBP_QUALITY, quality]
    elif fmt is ImageFormat.PNG:
        params = [cv2.IMWRITE_PNG_COMPRESSION, 3]
    ok, buffer = cv2.imencode(_ENCODE_EXT[fmt], pixels, params)
    if not ok:
        raise ValueError(f"OpenCV could not encode the image as {fmt.value}")
    return bytes(buffer.tobytes())
