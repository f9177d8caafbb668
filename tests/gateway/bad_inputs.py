"""A corpus of hostile or broken uploads, built in code (nothing downloaded)."""

from __future__ import annotations

import io
import struct
import zlib

import cv2
import numpy as np
from PIL import Image


def good_jpeg(seed: int = 0, size: tuple[int, int] = (96, 128)) -> bytes:
    rng = np.random.default_rng(seed)
    img = rng.integers(0, 255, (*size, 3), dtype=np.uint8)
    cv2.rectangle(img, (10, 10), (40, 40), (0, 0, 255), -1)
    ok, buf = cv2.imencode(".jpg", img)
    assert ok
    return buf.tobytes()


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_with_header(width: int, height: int) -> bytes:
    """A PNG whose IHDR claims width x height, with a tiny (valid zlib) IDAT: a bomb header."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 64)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", ihdr)
        + _png_chunk(b"IDAT", idat)
        + _png_chunk(b"IEND", b"")
    )


def gif() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (8, 8), (200, 10, 10)).save(buf, format="GIF")
    return buf.getvalue()


def corpus() -> dict[str, tuple[str, bytes]]:
    """name -> (uploaded file name, bytes)."""
    jpeg = good_jpeg(1)
    return {
        "truncated-jpeg": ("truncated.jpg", jpeg[: len(jpeg) // 2]),
        "bogus-png-size": ("bogus.png", png_with_header(4_000_000, 3)),
        "bomb-30000": ("bomb.png", png_with_header(30_000, 30_000)),
        "gif": ("anim.gif", gif()),
        "svg": (
            "vector.svg",
            b'<svg xmlns="http://www.w3.org/2000/svg"><script>x()</script></svg>',
        ),
        "polyglot": ("poly.jpg", b"\xff\xd8\xff\xe0<html><script>alert(1)</script></html>"),
        "zero-bytes": ("empty.jpg", b""),
        "traversal-name": ("../../etc/passwd.jpg", good_jpeg(2)),
    }


def flat_png(width: int, height: int) -> bytes:
    """A real, valid PNG of one colour: tiny on the wire, width x height pixels to decode."""
    buf = io.BytesIO()
    Image.fromarray(np.zeros((height, width, 3), np.uint8)).save(buf, format="PNG")
    return buf.getvalue()
