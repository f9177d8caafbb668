"""A deterministic corpus of JPEG, PNG, WebP and TIFF files for the container-walker parity test:
clean encodes from OpenCV and Pillow, files carrying every kind of metadata (EXIF, XMP, ICC,
APPn, COM, tEXt/zTXt/iTXt/eXIf, RIFF EXIF/XMP/ICCP), hand-built structural oddities (fill bytes,
standalone markers, segments after the scan, chunks past the end), truncated and corrupted
variants of each, the image fuzzer's seeds and the demo photos. Built in code, nothing
downloaded; the same bytes on every machine with the pinned Pillow and OpenCV."""

from __future__ import annotations

import io
import struct
import zlib
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from tests.gateway.bad_inputs import corpus as bad_inputs
from tests.gateway.bad_inputs import png_with_header

DEMO_PHOTOS = Path(__file__).resolve().parents[2] / "gateway" / "demo_photos"
XMP = (
    b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF '
    b'xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"><rdf:Description '
    b'xmlns:exif="http://ns.adobe.com/exif/1.0/" exif:DateTimeOriginal="2024-06-14T09:41:07"/>'
    b"</rdf:RDF></x:xmpmeta>"
)


def _pixels(seed: int = 0, shape: tuple[int, int] = (24, 32)) -> np.ndarray:
    rng = np.random.default_rng(seed)
    img = rng.integers(0, 255, (*shape, 3), dtype=np.uint8)
    cv2.rectangle(img, (4, 4), (14, 14), (0, 0, 255), -1)
    return img


def _cv2(ext: str, img: np.ndarray, params: tuple[int, ...] = ()) -> bytes:
    ok, buf = cv2.imencode(ext, img, list(params))
    assert ok
    return bytes(buf.tobytes())


def _exif() -> Image.Exif:
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation
    exif[0x010F] = "Maker"
    exif[0x0110] = "EX-1"
    exif[0x0132] = "2024:06:14 09:41:07"
    exif.get_ifd(0x8825)[2] = (52.0, 31.0, 0.0)  # GPS latitude
    return exif


def _icc() -> bytes:
    from PIL import ImageCms

    profile = bytes(ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes())
    return profile[:24] + bytes(12) + profile[36:]  # LittleCMS stamps the creation time there


def _pil(fmt: str, mode: str = "RGB", **params: object) -> bytes:
    im = Image.fromarray(cv2.cvtColor(_pixels(1), cv2.COLOR_BGR2RGB)).convert(mode)
    buf = io.BytesIO()
    im.save(buf, format=fmt, **params)
    return buf.getvalue()


def _segment(marker: int, body: bytes) -> bytes:
    return bytes([0xFF, marker]) + (len(body) + 2).to_bytes(2, "big") + body


def _png_chunk(kind: bytes, data: bytes, length: int | None = None) -> bytes:
    size = len(data) if length is None else length
    return struct.pack(">I", size) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _riff_chunk(kind: bytes, data: bytes, *, pad: bool = True) -> bytes:
    padding = b"\x00" if pad and len(data) % 2 else b""
    return kind + struct.pack("<I", len(data)) + data + padding


def _riff(chunks: bytes, size: int | None = None) -> bytes:
    declared = 4 + len(chunks) if size is None else size
    return b"RIFF" + struct.pack("<I", declared) + b"WEBP" + chunks


def _sos(jpeg: bytes) -> int:
    return jpeg.index(b"\xff\xda")


def _jpeg_bases() -> dict[str, bytes]:
    base = _cv2(".jpg", _pixels())
    app1 = _segment(0xE1, b"Exif\x00\x00" + b"MM\x00*" + b"\x00" * 16)
    progressive = _cv2(".jpg", _pixels(2), (cv2.IMWRITE_JPEG_PROGRESSIVE, 1))
    second_scan = progressive.index(b"\xff\xda", _sos(progressive) + 2)
    mpo = io.BytesIO()
    frames = [Image.fromarray(_pixels(s)) for s in (3, 4)]
    frames[0].save(mpo, format="MPO", save_all=True, append_images=frames[1:])
    return {
        "jpeg-cv2": base,
        "jpeg-cv2-progressive": progressive,
        "jpeg-cv2-restart": _cv2(".jpg", _pixels(5), (cv2.IMWRITE_JPEG_RST_INTERVAL, 1)),
        "jpeg-cv2-grey": _cv2(".jpg", cv2.cvtColor(_pixels(6), cv2.COLOR_BGR2GRAY)),
        "jpeg-pil-exif-icc-xmp-com": _pil(
            "JPEG", exif=_exif(), icc_profile=_icc(), xmp=XMP, comment=b"jane doe"
        ),
        "jpeg-pil-cmyk": _pil("JPEG", mode="CMYK"),
        "jpeg-pil-mpo": mpo.getvalue(),
        "jpeg-appn": base[:2]
        + _segment(0xED, b"Photoshop 3.0\x00" + b"8BIM" * 4)
        + _segment(0xEE, b"Adobe\x00" + b"\x00" * 6)
        + _segment(0xEF, b"")
        + base[2:],
        "jpeg-fill-bytes": base[:2]
        + b"\xff\xff\xff"
        + base[2 : _sos(base)]
        + b"\xff"
        + base[_sos(base) :],
        "jpeg-fill-hides-app1": base[:2] + b"\xff" + app1 + base[2:],
        "jpeg-tem": base[:2] + b"\xff\x01" + base[2:],
        "jpeg-stray-rst": base[:2] + b"\xff\xd3" + base[2:],
        "jpeg-com-after-scan": base[:-2] + _segment(0xFE, b"secret") + base[-2:],
        "jpeg-app1-between-scans": progressive[:second_scan] + app1 + progressive[second_scan:],
        "jpeg-soi-eoi": b"\xff\xd8\xff\xd9",
        "jpeg-soi-eoi-app1": b"\xff\xd8\xff\xd9" + app1,
        "jpeg-soi-eoi-app1-eoi": b"\xff\xd8\xff\xd9" + app1 + b"\xff\xd9",
        "jpeg-plus-jpeg": base + base,
        "jpeg-plus-zip": base + b"PK\x03\x04hidden",
        "jpeg-plus-zeros": base + b"\x00" * 7,
        "jpeg-plus-zeros-junk": base + b"\x00" * 7 + b"x",
        "jpeg-length-0": base[:2] + b"\xff\xe1\x00\x00" + base[2:],
        "jpeg-length-1": base[:2] + b"\xff\xe1\x00\x01" + base[2:],
        "jpeg-length-overrun": base[:2] + b"\xff\xe1\xff\xf0" + b"x" * 32,
        "jpeg-no-marker": base[:2] + b"\x00" + base[2:],
        "jpeg-ends-in-ff": base[:2] + b"\xff",
        "jpeg-ends-in-fill": base[:2] + b"\xff\xff\xff",
        "jpeg-ends-after-length": base[:2] + b"\xff\xe1\x00",
        "jpeg-scan-no-eoi": base[:-2],
        "jpeg-two-byte-magic": b"\xff\xd8" + b"\x00" * 16,
        "jpeg-scan-zero-padding": base[:-2] + b"\x00" * 4 + base[-2:],
    }


def _png_bases() -> dict[str, bytes]:
    from PIL import PngImagePlugin

    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", "jane doe")
    info.add_text("Author", "x" * 2000, zip=True)
    info.add_itxt("XML:com.adobe.xmp", XMP.decode(), lang="", tkey="")
    base = _cv2(".png", _pixels())
    iend = base.rindex(b"IEND") - 4
    apng = io.BytesIO()
    frames = [Image.fromarray(_pixels(s)) for s in (7, 8)]
    frames[0].save(apng, format="PNG", save_all=True, append_images=frames[1:])
    return {
        "png-cv2": base,
        "png-cv2-alpha": _cv2(".png", cv2.cvtColor(_pixels(9), cv2.COLOR_BGR2BGRA)),
        "png-cv2-16bit": _cv2(".png", _pixels(10).astype(np.uint16) * 257),
        "png-pil-text-itxt-exif-icc": _pil("PNG", pnginfo=info, exif=_exif(), icc_profile=_icc()),
        "png-pil-palette": _pil("PNG", mode="P"),
        "png-apng": apng.getvalue(),
        "png-private-chunk": base[:iend] + _png_chunk(b"prVt", b"secret") + base[iend:],
        "png-iend-with-data": base[:iend] + _png_chunk(b"IEND", b"secret"),
        "png-iend-overrun": base[:iend] + _png_chunk(b"IEND", b"", length=64),
        "png-chunk-overrun": base[:iend] + _png_chunk(b"tEXt", b"a\x00b", length=4096),
        "png-after-iend": base + _png_chunk(b"tEXt", b"a\x00secret"),
        "png-plus-zeros": base + b"\x00" * 5,
        "png-no-iend": base[:iend],
        "png-signature-only": base[:8],
        "png-bomb-header": png_with_header(30_000, 30_000),
    }


def _webp_bases() -> dict[str, bytes]:
    lossy = _cv2(".webp", _pixels(), (cv2.IMWRITE_WEBP_QUALITY, 80))
    vp8 = lossy[12:]
    animated = io.BytesIO()
    frames = [Image.fromarray(_pixels(s)) for s in (11, 12)]
    frames[0].save(animated, format="WEBP", save_all=True, append_images=frames[1:])
    return {
        "webp-cv2-vp8": lossy,
        "webp-cv2-vp8l": _cv2(".webp", _pixels(13), (cv2.IMWRITE_WEBP_QUALITY, 101)),
        "webp-pil-vp8x-exif-xmp-icc": _pil("WEBP", exif=_exif(), xmp=XMP, icc_profile=_icc()),
        "webp-pil-alpha": _pil("WEBP", mode="RGBA", quality=70),
        "webp-pil-animated": animated.getvalue(),
        "webp-unknown-chunk": _riff(vp8 + _riff_chunk(b"ABCD", b"secret")),
        "webp-odd-chunk-padded": _riff(vp8 + _riff_chunk(b"XYZ ", b"odd")),
        "webp-odd-chunk-unpadded": _riff(vp8 + _riff_chunk(b"XYZ ", b"odd", pad=False)),
        "webp-riff-too-large": _riff(vp8, size=4 + len(vp8) + 100),
        "webp-riff-too-small": _riff(
            vp8 + _riff_chunk(b"EXIF", b"MM\x00*secret"), size=4 + len(vp8)
        ),
        "webp-chunk-overrun": _riff(vp8 + b"EXIF" + struct.pack("<I", 4096) + b"MM\x00*"),
        "webp-riff-size-0": _riff(vp8, size=0),
        "webp-plus-zeros": lossy + b"\x00" * 4,
        "webp-plus-junk": lossy + b"junk",
    }


def _other_bases() -> dict[str, bytes]:
    seeds = {f"fuzz-seed-{fmt.lower()}": _pil(fmt) for fmt in ("BMP", "TIFF")}
    seeds["fuzz-seed-alpha-png"] = _pil("PNG", mode="RGBA")
    seeds["tiff-cv2"] = _cv2(".tiff", _pixels())
    seeds["tiff-pil-exif-icc"] = _pil("TIFF", exif=_exif(), icc_profile=_icc())
    seeds.update({f"bad-{name}": data for name, (_, data) in bad_inputs().items()})
    return seeds


def _variants(name: str, data: bytes, seed: int) -> dict[str, bytes]:
    """Truncations at fixed points and single-byte corruptions at seeded positions."""
    out: dict[str, bytes] = {}
    cuts = {2, 3, 4, 10, 20, 40, len(data) // 3, len(data) // 2, len(data) - 3, len(data) - 1}
    for cut in sorted(c for c in cuts if 0 < c < len(data)):
        out[f"{name}~cut{cut}"] = data[:cut]
    rng = np.random.default_rng(seed)
    for n in range(6):
        limit = min(len(data), 256) if n < 4 else len(data)
        if limit < 3:
            break
        pos = int(rng.integers(2, limit))
        value = int(rng.integers(0, 256))
        out[f"{name}~flip{pos}={value:02x}"] = data[:pos] + bytes([value]) + data[pos + 1 :]
    return out


def build() -> dict[str, bytes]:
    """Every case of the corpus, by a stable name."""
    groups: list[Callable[[], dict[str, bytes]]] = [
        _jpeg_bases,
        _png_bases,
        _webp_bases,
        _other_bases,
    ]
    cases: dict[str, bytes] = {}
    for group in groups:
        for index, (name, data) in enumerate(group().items()):
            cases[name] = data
            cases.update(_variants(name, data, seed=len(cases) * 1000 + index))
    for path in sorted(DEMO_PHOTOS.glob("*.jpg")):
        data = path.read_bytes()
        cases[f"demo-{path.stem}"] = data
        cases[f"demo-{path.stem}~cut{len(data) // 2}"] = data[: len(data) // 2]
    return cases
