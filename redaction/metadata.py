"""Image metadata: read the few technical facts worth keeping, before pixels are re-encoded,
and prove that an encoded file carries no metadata outside an allowlist.

Facts are read once from the original (EXIF in JPEG, PNG eXIf, WebP and TIFF; the XMP packet
only for a capture date EXIF lacks); everything else in the file (GPS, the rest of XMP, IPTC,
MakerNotes, comments, thumbnails, text chunks) is never copied anywhere. `metadata_inventory`
walks the container structure itself (JPEG segments, PNG and RIFF chunks with
`redaction.containers`, the same walk the decoder's completeness check makes; TIFF tags with
Pillow), so a released file is checked by what it really holds.
"""

from __future__ import annotations

import io
import re
import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Final
from xml.etree.ElementTree import Element

from defusedxml import ElementTree  # type: ignore[import-untyped]
from defusedxml.common import DefusedXmlException  # type: ignore[import-untyped]
from PIL import ExifTags, Image

from redaction.containers import PNG_SIGNATURE, SOS, walk_jpeg, walk_png, walk_webp
from redaction.errors import CorruptImage

_EXIF_TIME: Final = "%Y:%m:%d %H:%M:%S"
_TEXT_MAX: Final = 128
_TAG_MAKE, _TAG_MODEL, _TAG_DATETIME = 0x010F, 0x0110, 0x0132
_TAG_DATETIME_ORIGINAL, _TAG_BODY_SERIAL, _TAG_CAMERA_SERIAL = 0x9003, 0xA431, 0xC62F

# XMP properties that may hold when the picture was taken, most specific first.
_XMP_CAPTURE_TIME: Final = (
    "{http://ns.adobe.com/exif/1.0/}DateTimeOriginal",
    "{http://ns.adobe.com/photoshop/1.0/}DateCreated",
    "{http://ns.adobe.com/xap/1.0/}CreateDate",
)
# A packet larger than this (embedded previews, long edit histories) is not parsed for a
# date: parsing costs ~0.1 s per MiB of tiny elements, and the main packet of a JPEG (one
# APP1 segment) holds at most 64 KiB anyway.
_XMP_MAX_BYTES: Final = 1024 * 1024
# XMP's date grammar (ISO 8601 subset), down to the day; the UTC offset is matched, not used.
_XMP_DATE: Final = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})"
    r"(?:[T ]([0-9]{2}):([0-9]{2})(?::([0-9]{2})(?:[.,][0-9]+)?)?(?:Z|[+-][0-9]{2}:?[0-9]{2})?)?"
)

ICC_PROFILE: Final = "icc_profile"


@dataclass(frozen=True, slots=True)
class ImageFacts:
    """What the original's EXIF (and, for the capture time, XMP) said; private (sealed at
    rest), released only per policy."""

    # Naive, as recorded (usually the camera's local time). An XMP UTC offset is dropped and
    # the wall-clock time kept, as EXIF's DateTimeOriginal is read without OffsetTimeOriginal.
    # An XMP date without a time is a `date`, not midnight: nothing may claim a time of day
    # the file does not hold.
    capture_time: datetime | date | None = None
    camera_make: str | None = None
    camera_model: str | None = None
    device_serial: str | None = None
    orientation: int = 1
    had_gps: bool = False
    icc_profile: bytes | None = None


def read_facts(data: bytes) -> ImageFacts:
    """The technical facts of an image already accepted by `redaction.io.decode_image`.

    Unreadable EXIF yields empty facts, never an error: facts are optional, pixels are not.
    The capture time is EXIF DateTimeOriginal, else the XMP packet's (see `_xmp_capture_time`),
    else EXIF DateTime: editors rewrite that one on every save, while XMP keeps the original's.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with Image.open(io.BytesIO(data)) as im:
                exif = im.getexif()  # loads a PNG without eXIf, so its later chunks are seen
                icc = im.info.get("icc_profile")
                xmp = im.info.get("xmp")  # JPEG APP1, PNG iTXt, WebP 'XMP ', TIFF tag 700
                ifd = exif.get_ifd(ExifTags.IFD.Exif)
                gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
    except Exception:  # untrusted bytes: a broken EXIF block only means no facts
        return ImageFacts()
    orientation = exif.get(ExifTags.Base.Orientation, 1)
    return ImageFacts(
        capture_time=(
            _exif_time(ifd.get(_TAG_DATETIME_ORIGINAL))
            or _xmp_capture_time(xmp)
            or _exif_time(exif.get(_TAG_DATETIME))
        ),
        camera_make=_text(exif.get(_TAG_MAKE)),
        camera_model=_text(exif.get(_TAG_MODEL)),
        device_serial=_text(ifd.get(_TAG_BODY_SERIAL) or exif.get(_TAG_CAMERA_SERIAL)),
        orientation=orientation if isinstance(orientation, int) and 1 <= orientation <= 8 else 1,
        had_gps=bool(gps),
        icc_profile=icc if isinstance(icc, bytes) and icc else None,
    )


def _text(value: object) -> str | None:
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    if not isinstance(value, str):
        return None
    cleaned = "".join(ch for ch in value if ch.isprintable()).strip()
    return cleaned[:_TEXT_MAX] or None


def _exif_time(value: object) -> datetime | None:
    text = _text(value)
    if text is None:
        return None
    try:
        return datetime.strptime(text[:19], _EXIF_TIME)
    except ValueError:
        return None


def _xmp_capture_time(packet: object) -> datetime | date | None:
    """The value of the most specific XMP capture-time property that parses as a date.

    Properties may be written as attributes of rdf:Description or as elements. A packet that
    is not well-formed, is too large, or declares a DTD (entity expansion, external
    references) yields None: it costs the date, never the ingest.
    """
    root = _parse_xmp(packet)
    if root is None:
        return None
    found: dict[str, datetime | date] = {}
    for element in root.iter():
        for name in _XMP_CAPTURE_TIME:
            if name in found:
                continue
            value = element.get(name) or (element.text if element.tag == name else None)
            moment = _xmp_time(value)
            if moment is not None:
                found[name] = moment
    return next((found[name] for name in _XMP_CAPTURE_TIME if name in found), None)


def _parse_xmp(packet: object) -> Element | None:
    if isinstance(packet, str):
        packet = packet.encode("utf-8")
    if not isinstance(packet, bytes) or not packet or len(packet) > _XMP_MAX_BYTES:
        return None
    try:
        root: Element = ElementTree.fromstring(packet.strip(b"\x00 \t\r\n"), forbid_dtd=True)
    except (ElementTree.ParseError, DefusedXmlException, ValueError):
        return None  # untrusted bytes: malformed or hostile XML only means no XMP date
    return root


def _xmp_time(value: object) -> datetime | date | None:
    """An XMP date (ISO 8601 subset) at second precision, its UTC offset dropped; a date
    without a time is a `date`, and dates coarser than a day are refused rather than padded.
    Writers that put EXIF's 'YYYY:MM:DD HH:MM:SS' into XMP are read as EXIF is."""
    text = _text(value)
    if text is None:
        return None
    match = _XMP_DATE.fullmatch(text)
    if match is None:
        return _exif_time(text)
    if match.group(4) is None:
        try:
            return date(*(int(part) for part in match.groups()[:3]))
        except ValueError:  # e.g. month 13
            return None
    year, month, day, hour, minute, second = (int(part) for part in match.groups(default="0"))
    try:
        return datetime(year, month, day, hour, minute, second)
    except ValueError:  # e.g. month 13, hour 25
        return None


# --- what a file holds ----------------------------------------------------------------------

_JPEG_STRUCTURE: Final = frozenset(
    {0xC0, 0xC1, 0xC2, 0xC3, 0xC4, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}
    | {0xDB, 0xDD, SOS}
)
_PNG_STRUCTURE: Final = frozenset({b"IHDR", b"PLTE", b"IDAT", b"IEND", b"tRNS"})
_WEBP_STRUCTURE: Final = frozenset({b"VP8 ", b"VP8L", b"VP8X", b"ALPH"})
# Baseline TIFF tags that describe pixels only (no text, no dates, no sub-IFDs).
_TIFF_STRUCTURE: Final = frozenset(
    {254, 256, 257, 258, 259, 262, 266, 273, 277, 278, 279, 282, 283, 284, 296, 317, 338, 339}
)


def metadata_inventory(data: bytes) -> list[str]:
    """Every non-structural item in an encoded image, e.g. ['jpeg:APP1:Exif', 'png:tEXt'].

    Structure needed to show the pixels is not listed; an ICC profile is listed as
    'icc_profile'; non-zero bytes after the container's end as '<format>:trailing-data'.
    Raises CorruptImage for a container it cannot walk to its end (fail closed): truncated,
    a length past the end, a JPEG with no scan.
    """
    if data.startswith(b"\xff\xd8"):
        return _jpeg_items(data)
    if data.startswith(PNG_SIGNATURE):
        return _png_items(data)
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return _webp_items(data)
    if data[:4] in (b"II*\x00", b"MM\x00*"):
        return _tiff_items(data)
    raise CorruptImage("cannot list the metadata of this file: unknown container")


def disallowed_metadata(data: bytes, *, allowed: Iterable[str]) -> list[str]:
    """The items of `metadata_inventory` not in `allowed` (empty means the file is clean)."""
    keep = set(allowed)
    return [item for item in metadata_inventory(data) if item not in keep]


def _jpeg_items(data: bytes) -> list[str]:
    walk = walk_jpeg(data)
    if not any(part.kind[0] == SOS for part in walk.parts):
        raise CorruptImage("JPEG ended before its scan")
    items: list[str] = []
    for part in walk.parts:
        marker, body = part.kind[0], data[part.start : part.end]
        if marker == 0xE0 and body.startswith(b"JFIF\x00") and body[12:14] == b"\x00\x00":
            pass  # a JFIF header with a 0x0 thumbnail holds version and density only
        elif marker == 0xE2 and body.startswith(b"ICC_PROFILE\x00"):
            if ICC_PROFILE not in items:
                items.append(ICC_PROFILE)
        elif marker not in _JPEG_STRUCTURE:
            items.append(f"jpeg:{_jpeg_marker_name(marker)}:{_label(body)}")
    if data[walk.end :].strip(b"\x00"):
        items.append("jpeg:trailing-data")
    return items


def _jpeg_marker_name(marker: int) -> str:
    if 0xE0 <= marker <= 0xEF:
        return f"APP{marker - 0xE0}"
    return "COM" if marker == 0xFE else f"0x{marker:02X}"


def _label(body: bytes) -> str:
    head = body[:12].split(b"\x00", 1)[0]
    return "".join(chr(b) if 32 < b < 127 else "?" for b in head[:12]) or "-"


def _png_items(data: bytes) -> list[str]:
    walk = walk_png(data)
    items: list[str] = []
    for part in walk.parts:
        if part.kind == b"iCCP":
            items.append(ICC_PROFILE)
        elif part.kind not in _PNG_STRUCTURE:
            items.append(f"png:{part.kind.decode('latin-1')}")
    # IEND has no payload by the standard: bytes in it are as hidden as bytes after it
    if walk.parts[-1].length or data[walk.end :].strip(b"\x00"):
        items.append("png:trailing-data")
    return items


def _webp_items(data: bytes) -> list[str]:
    walk = walk_webp(data)
    items: list[str] = []
    for part in walk.parts:
        if part.kind == b"ICCP":
            items.append(ICC_PROFILE)
        elif part.kind not in _WEBP_STRUCTURE:
            items.append(f"webp:{part.kind.decode('latin-1').strip()}")
    if data[walk.end :].strip(b"\x00"):
        items.append("webp:trailing-data")
    return items


def _tiff_items(data: bytes) -> list[str]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            with Image.open(io.BytesIO(data)) as im:
                frames = int(getattr(im, "n_frames", 1))
                tags = set(im.tag_v2.keys())  # type: ignore[attr-defined]
        except Exception as exc:
            raise CorruptImage(f"cannot read the TIFF tags: {exc}") from exc
    items = ["icc_profile"] if 34675 in tags else []
    items.extend(f"tiff:tag-{t}" for t in sorted(tags - _TIFF_STRUCTURE - {34675}))
    if frames > 1:
        items.append(f"tiff:extra-ifds-{frames - 1}")
    return items


def embed_icc_profile_jpeg(jpeg: bytes, icc: bytes) -> bytes:
    """Insert an ICC profile (APP2 'ICC_PROFILE' chunks) right after the JFIF header."""
    if not jpeg.startswith(b"\xff\xd8"):
        raise ValueError("not a JPEG")
    chunk = 65519
    parts = [icc[i : i + chunk] for i in range(0, len(icc), chunk)]
    if not parts or len(parts) > 255:
        raise ValueError("ICC profile is empty or too large for JPEG")
    segments = b"".join(
        b"\xff\xe2"
        + (2 + 14 + len(part)).to_bytes(2, "big")
        + b"ICC_PROFILE\x00"
        + bytes([n, len(parts)])
        + part
        for n, part in enumerate(parts, start=1)
    )
    insert_at = 2
    if jpeg[2:4] == b"\xff\xe0":
        insert_at = 4 + int.from_bytes(jpeg[4:6], "big")
    return jpeg[:insert_at] + segments + jpeg[insert_at:]
