"""The capture time read from XMP when EXIF has none (redaction.metadata.read_facts).

Files are written by the real exiftool where it can write what the test needs; packets
exiftool refuses to write (hostile or malformed XML) are embedded raw with Pillow.
"""

from __future__ import annotations

import io
import subprocess
import time
from datetime import date, datetime
from pathlib import Path

import pytest
from PIL import Image, PngImagePlugin

from gateway.pseudonymisation.facts import facts_json
from gateway.pseudonymisation.policy import CaptureTimeGranularity
from gateway.pseudonymisation.task_meta import coarsen
from redaction.metadata import read_facts
from tests.pseudonymisation.exiftool_fixtures import exiftool, read_tags

FORMATS = ("jpeg", "png", "webp", "tiff")
_MAKE = 0x010F

RDF_HEAD = (
    "<x:xmpmeta xmlns:x='adobe:ns:meta/'>"
    "<rdf:RDF xmlns:rdf='http://www.w3.org/1999/02/22-rdf-syntax-ns#'>"
    "<rdf:Description rdf:about='' xmlns:exif='http://ns.adobe.com/exif/1.0/'"
    " xmlns:xmp='http://ns.adobe.com/xap/1.0/'"
    " xmlns:photoshop='http://ns.adobe.com/photoshop/1.0/'"
)
RDF_TAIL = "</rdf:Description></rdf:RDF></x:xmpmeta>"

BILLION_LAUGHS = (
    '<?xml version="1.0"?>\n<!DOCTYPE lolz [\n <!ENTITY lol "lol">\n'
    + "".join(
        f' <!ENTITY lol{n} "{f"&lol{n - 1};" * 10 if n > 1 else "&lol;" * 10}">\n'
        for n in range(1, 10)
    )
    + "]>\n"
    + RDF_HEAD
    + "><xmp:CreateDate>&lol9;</xmp:CreateDate>"
    + RDF_TAIL
)


def _commented_packet(size: int) -> str:
    """A well-formed packet with a date, padded by a comment to `size` characters or more."""
    start = RDF_HEAD + "><xmp:CreateDate>2024-06-01</xmp:CreateDate><!--"
    end = "-->" + RDF_TAIL
    return start + "x" * (size - len(start) - len(end)) + end


def _blank(directory: Path, fmt: str, *, make: str = "XmpCam") -> Path:
    """A small image carrying EXIF Make only (no date anywhere)."""
    path = directory / f"photo.{fmt}"
    exif = Image.Exif()
    exif[_MAKE] = make
    Image.new("RGB", (32, 24), (180, 40, 40)).save(path, fmt.upper(), exif=exif.tobytes())
    return path


def _exiftool(path: Path, *args: str) -> None:
    subprocess.run([exiftool(), "-q", "-q", "-overwrite_original", *args, str(path)], check=True)


def _with_raw_packet(fmt: str, packet: str, *, make: str = "XmpCam") -> bytes:
    """An image whose XMP packet is exactly `packet` (exiftool refuses to write bad XML)."""
    image = Image.new("RGB", (32, 24), (40, 40, 180))
    exif = Image.Exif()
    exif[_MAKE] = make
    options: dict[str, object] = {"exif": exif.tobytes()}
    if fmt == "png":
        info = PngImagePlugin.PngInfo()
        info.add_itxt("XML:com.adobe.xmp", packet)
        options["pnginfo"] = info
    elif fmt == "tiff":
        options = {"tiffinfo": {700: packet.encode(), 271: make}}
    else:
        options["xmp"] = packet.encode()
    buf = io.BytesIO()
    image.save(buf, fmt.upper(), **options)
    return buf.getvalue()


@pytest.mark.parametrize("fmt", FORMATS)
def test_xmp_only_capture_time_is_read_in_every_format(tmp_path, fmt) -> None:
    path = _blank(tmp_path, fmt)
    _exiftool(path, "-XMP-exif:DateTimeOriginal=2024:06:01 10:20:30+02:00")
    tags = read_tags(path)
    assert tags["XMP-exif:DateTimeOriginal"] == "2024:06:01 10:20:30+02:00"
    assert not any(key.startswith(("ExifIFD:", "IFD0:ModifyDate")) for key in tags)
    facts = read_facts(path.read_bytes())
    assert facts.capture_time == datetime(2024, 6, 1, 10, 20, 30)  # wall clock, offset dropped
    assert facts.camera_make == "XmpCam"


@pytest.mark.parametrize("fmt", FORMATS)
def test_xmp_properties_are_preferred_in_order(tmp_path, fmt) -> None:
    path = _blank(tmp_path, fmt)
    _exiftool(
        path,
        "-XMP-xmp:CreateDate=2022:03:04 05:06:07Z",
        "-XMP-photoshop:DateCreated=2023:01:02 03:04:05",
        "-XMP-exif:DateTimeOriginal=2024:06:01 10:20:30",
    )
    assert read_facts(path.read_bytes()).capture_time == datetime(2024, 6, 1, 10, 20, 30)
    _exiftool(path, "-XMP-exif:DateTimeOriginal=")
    assert read_facts(path.read_bytes()).capture_time == datetime(2023, 1, 2, 3, 4, 5)
    _exiftool(path, "-XMP-photoshop:DateCreated=")
    assert read_facts(path.read_bytes()).capture_time == datetime(2022, 3, 4, 5, 6, 7)


@pytest.mark.parametrize("fmt", FORMATS)
def test_exif_date_time_original_wins_over_xmp(tmp_path, fmt) -> None:
    path = _blank(tmp_path, fmt)
    _exiftool(
        path,
        "-EXIF:DateTimeOriginal=2020:01:02 03:04:05",
        "-XMP-exif:DateTimeOriginal=2024:06:01 10:20:30",
    )
    assert read_facts(path.read_bytes()).capture_time == datetime(2020, 1, 2, 3, 4, 5)


def test_xmp_wins_over_exif_modify_date(tmp_path) -> None:
    """EXIF DateTime (IFD0) is rewritten by editors on every save; XMP keeps the capture."""
    path = _blank(tmp_path, "jpeg")
    _exiftool(
        path, "-EXIF:ModifyDate=2025:12:31 23:59:59", "-XMP-xmp:CreateDate=2024:06:01 10:20:30"
    )
    assert read_facts(path.read_bytes()).capture_time == datetime(2024, 6, 1, 10, 20, 30)
    _exiftool(path, "-XMP:all=")
    assert read_facts(path.read_bytes()).capture_time == datetime(2025, 12, 31, 23, 59, 59)


def test_offset_is_handled_as_the_exif_path_handles_it(tmp_path) -> None:
    """The same capture, in EXIF (with OffsetTimeOriginal) or in XMP, gives the same time."""
    in_exif = _blank(tmp_path, "jpeg")
    _exiftool(
        in_exif, "-EXIF:DateTimeOriginal=2024:06:01 23:30:00", "-EXIF:OffsetTimeOriginal=-05:00"
    )
    in_xmp = _blank(tmp_path, "png")
    _exiftool(in_xmp, "-XMP-exif:DateTimeOriginal=2024:06:01 23:30:00-05:00")
    from_exif = read_facts(in_exif.read_bytes()).capture_time
    assert from_exif == read_facts(in_xmp.read_bytes()).capture_time
    assert from_exif is not None and from_exif.tzinfo is None
    assert coarsen(from_exif, CaptureTimeGranularity.DAY) == "2024-06-01"  # not UTC's 06-02


@pytest.mark.parametrize("fmt", FORMATS)
def test_date_only_value_is_a_date_never_a_made_up_hour(tmp_path, fmt) -> None:
    path = _blank(tmp_path, fmt)
    _exiftool(path, "-XMP-photoshop:DateCreated=2024:06:01")
    assert read_tags(path)["XMP-photoshop:DateCreated"] == "2024:06:01"
    moment = read_facts(path.read_bytes()).capture_time
    assert type(moment) is date and moment == date(2024, 6, 1)
    assert coarsen(moment, CaptureTimeGranularity.MONTH) == "2024-06"
    assert coarsen(moment, CaptureTimeGranularity.HOUR) == "2024-06-01"  # not "2024-06-01T00"
    assert facts_json(path.read_bytes())["capture_time"] == "2024-06-01"


def test_properties_written_as_attributes_are_read(tmp_path) -> None:
    path = _blank(tmp_path, "jpeg")
    _exiftool(path, "-api", "XMPShorthand=1", "-XMP-photoshop:DateCreated=2024:06:01 10:20:30")
    assert b"photoshop:DateCreated='2024-06-01T10:20:30'" in path.read_bytes()
    assert read_facts(path.read_bytes()).capture_time == datetime(2024, 6, 1, 10, 20, 30)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2024-06-01T10:20:30+02:00", datetime(2024, 6, 1, 10, 20, 30)),
        ("2024-06-01T10:20:30Z", datetime(2024, 6, 1, 10, 20, 30)),
        ("2024-06-01T10:20:30.987-05:30", datetime(2024, 6, 1, 10, 20, 30)),
        ("2024-06-01T10:20+0200", datetime(2024, 6, 1, 10, 20)),
        ("  2024-06-01\n", date(2024, 6, 1)),
        ("2024-02-30", None),
        ("2024:06:01 10:20:30", datetime(2024, 6, 1, 10, 20, 30)),  # EXIF style, misplaced
        ("2024-06", None),  # coarser than a day: refused, not padded
        ("2024", None),
        ("2024-W23", None),
        ("2024-13-01", None),
        ("2024-06-01T25:00", None),
        ("sometime in June", None),
        ("", None),
    ],
)
def test_iso_8601_variants(value, expected) -> None:
    packet = RDF_HEAD + f"><xmp:CreateDate>{value}</xmp:CreateDate>" + RDF_TAIL
    assert read_facts(_with_raw_packet("jpeg", packet)).capture_time == expected


@pytest.mark.parametrize("fmt", FORMATS)
def test_unparsable_value_is_skipped_not_an_error(tmp_path, fmt) -> None:
    packet = tmp_path / "bad.xmp"
    packet.write_text(
        RDF_HEAD + " exif:DateTimeOriginal='sometime in June' xmp:CreateDate='2021-02-03'/>"
        "</rdf:RDF></x:xmpmeta>"
    )
    path = _blank(tmp_path, fmt)
    _exiftool(path, f"-XMP<={packet}")
    assert read_tags(path)["XMP-exif:DateTimeOriginal"] == "sometime in June"
    assert read_facts(path.read_bytes()).capture_time == date(2021, 2, 3)
    only_bad = _with_raw_packet(fmt, RDF_HEAD + " photoshop:DateCreated='not a date'/>" + RDF_TAIL)
    facts = read_facts(only_bad)
    assert facts.capture_time is None and facts.camera_make == "XmpCam"


@pytest.mark.parametrize("fmt", FORMATS)
def test_billion_laughs_packet_costs_the_date_only(fmt) -> None:
    data = _with_raw_packet(fmt, BILLION_LAUGHS)
    assert BILLION_LAUGHS.encode() in data  # the hostile packet really is in the file
    started = time.perf_counter()
    facts = read_facts(data)
    assert time.perf_counter() - started < 1.0
    assert facts.capture_time is None
    assert facts.camera_make == "XmpCam"


@pytest.mark.parametrize(
    "packet",
    [
        RDF_HEAD + "><xmp:CreateDate>2024-06-01</xmp:CreateDate>",  # truncated
        "<x:xmpmeta><xmp:CreateDate>2024-06-01</xmp:CreateDate></x:xmpmeta>",  # unbound prefix
        '<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><x>&e;</x>',  # external entity
        '<!DOCTYPE x [<!ENTITY d "2024-06-01">]>'  # harmless entity, but no DTD is accepted
        + RDF_HEAD
        + "><xmp:CreateDate>&d;</xmp:CreateDate>"
        + RDF_TAIL,
        "\x00" * 64,
        _commented_packet(1024**2 + 1),
    ],
    ids=[
        "truncated",
        "unbound-prefix",
        "external-entity",
        "internal-entity",
        "nul-bytes",
        "over-1-MiB",
    ],
)
def test_malformed_or_oversized_packet_yields_no_date(packet) -> None:
    facts = read_facts(_with_raw_packet("webp", packet))
    assert facts.capture_time is None and facts.camera_make == "XmpCam"


def test_large_packet_under_the_cap_is_read() -> None:
    data = _with_raw_packet("webp", _commented_packet(1000 * 1024))
    assert read_facts(data).capture_time == date(2024, 6, 1)
