"""The one walk of the JPEG, PNG and WebP containers: where each segment or chunk lies, and
where the file ends.

Two readers use it and must agree: the decode path (`redaction.io`) proves an upload holds all
the bytes it declares, and the release gate (`redaction.metadata`) lists everything a file holds
besides pixels. What each does with a part (nothing, or list it) is its own business; where the
parts are, and whether the file can be followed to its end at all, is decided here only.

The walk fails closed: a file it cannot follow to its end (cut short, a length running past the
end, a byte where a marker must be) raises `CorruptImage`, never returns a partial answer. Bytes
after the end are not walked; the caller sees them as `data[walk.end:]`.

What the two readers do differently is on purpose, and theirs:
- after the end, the decoder notes every byte (`trailing-data:N`; they never leave, only pixels
  do), the gate ignores zero padding and lists anything else as `<format>:trailing-data`;
- for WebP the decoder asks only where the file ends (`webp_end`): libwebp checks the chunks it
  decodes. The gate walks every chunk (`walk_webp`), which refuses one running past the RIFF;
- the gate refuses a JPEG with no scan and lists a payload in PNG's IEND (which has none by the
  standard); for the decoder such a file fails to decode, or its extra bytes never leave.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final, NamedTuple

from redaction.errors import CorruptImage

PNG_SIGNATURE: Final = b"\x89PNG\r\n\x1a\n"

SOS: Final = 0xDA  # start of scan: entropy-coded data follows its header
_EOI: Final = 0xD9  # end of image
# Markers with no length and no payload: TEM and the restart markers RST0-RST7.
_JPEG_STANDALONE: Final = frozenset({0x01, *range(0xD0, 0xD8)})
# A marker inside JPEG entropy-coded data: 0xFF followed by neither a stuffed 0x00, a restart
# marker (D0-D7) nor another fill byte.
_JPEG_MARKER_IN_SCAN: Final = re.compile(rb"\xff[^\x00\xd0-\xd7\xff]")


class Part(NamedTuple):  # a tuple: a PNG of a few MB has hundreds of IDAT chunks
    """One JPEG segment or one PNG/RIFF chunk: its type and where its payload lies.

    `kind` is the marker byte for JPEG (b"\\xe1" is APP1; a standalone marker has an empty
    payload), the four-byte chunk type for PNG and RIFF. A scan's entropy-coded data is not
    part of its SOS segment's payload (the segment header is)."""

    kind: bytes
    start: int
    end: int

    @property
    def length(self) -> int:
        return self.end - self.start


@dataclass(frozen=True, slots=True)
class Walk:
    """The parts of a container in file order, and the offset just past its last byte (after
    JPEG's first EOI, after PNG's IEND chunk, or where the RIFF header says). JPEG's SOI and
    EOI are not parts; PNG's IEND is (the last one)."""

    parts: tuple[Part, ...]
    end: int


def truncated(fmt: str) -> CorruptImage:
    return CorruptImage(f"The {fmt} file is truncated or corrupt; send the complete file.")


def walk_jpeg(data: bytes) -> Walk:
    """The segments of a JPEG between SOI and its first EOI; `end` is just past that EOI.

    Fill bytes (any run of 0xFF before a marker) are skipped, standalone markers have no
    length, and each scan's entropy-coded data is skipped to the next marker, so segments
    between progressive scans and after the last scan are seen too."""
    parts: list[Part] = []
    pos, size = 2, len(data)
    while True:
        if pos >= size:
            raise truncated("JPEG")
        if data[pos] != 0xFF:
            raise CorruptImage("The JPEG file is corrupt (expected a marker).", offset=pos)
        while pos < size and data[pos] == 0xFF:
            pos += 1
        if pos >= size:
            raise truncated("JPEG")
        marker = data[pos]
        pos += 1
        if marker == _EOI:
            return Walk(tuple(parts), pos)
        if marker in _JPEG_STANDALONE:
            parts.append(Part(bytes([marker]), pos, pos))
            continue
        if pos + 2 > size:
            raise truncated("JPEG")
        length = int.from_bytes(data[pos : pos + 2], "big")
        if length < 2:
            raise CorruptImage("The JPEG file is corrupt (bad segment length).", offset=pos)
        parts.append(Part(bytes([marker]), pos + 2, pos + length))
        pos += length
        if marker == SOS:  # skip the entropy-coded data to the next marker
            found = _JPEG_MARKER_IN_SCAN.search(data, min(pos, size))
            if found is None:
                raise truncated("JPEG")
            pos = found.start()


def walk_png(data: bytes) -> Walk:
    """The chunks of a PNG (after its signature) up to and including IEND.

    CRCs are not checked: the decoder does that for the chunks it reads, and a chunk is
    listed by its type whatever its CRC."""
    parts: list[Part] = []
    pos, size = len(PNG_SIGNATURE), len(data)
    while pos + 8 <= size:
        length = int.from_bytes(data[pos : pos + 4], "big")
        kind = data[pos + 4 : pos + 8]
        parts.append(Part(kind, pos + 8, pos + 8 + length))
        pos += 12 + length
        if pos > size:
            break
        if kind == b"IEND":
            return Walk(tuple(parts), pos)
    raise truncated("PNG")


def webp_end(data: bytes) -> int:
    """Where a RIFF/WebP file ends by its header; raises if the file is shorter than that."""
    end = 8 + int.from_bytes(data[4:8], "little")
    if end > len(data):
        raise truncated("WebP")
    return end


def walk_webp(data: bytes) -> Walk:
    """The chunks of a RIFF/WebP file (after 'RIFF', its size and 'WEBP') within the size its
    header declares. Odd-length chunks are followed by a pad byte, which the last chunk may
    lack; fewer than 8 bytes left inside the RIFF (no room for a chunk header) are ignored.
    A chunk running past the RIFF's end raises."""
    end = webp_end(data)
    parts: list[Part] = []
    pos = 12
    while pos + 8 <= end:
        kind = data[pos : pos + 4]
        length = int.from_bytes(data[pos + 4 : pos + 8], "little")
        if pos + 8 + length > end:
            raise truncated("WebP")
        parts.append(Part(kind, pos + 8, pos + 8 + length))
        pos += 8 + length + (length & 1)
    return Walk(tuple(parts), end)
