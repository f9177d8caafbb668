"""atheris target: `redaction.io.decode_image` on arbitrary bytes either returns a decoded
image within the limits or raises a typed `InputError`, and the release gate's
`redaction.metadata.metadata_inventory` (the same container walk, `redaction.containers`)
returns a list or raises `CorruptImage`; anything else is a finding.

    python tests/fuzz/fuzz_image_validator.py -max_total_time=20 CORPUS_DIR
"""

from __future__ import annotations

import sys

import atheris

# the heavy dependencies load uninstrumented (instrumenting pydantic or numpy takes minutes);
# coverage feedback comes from our validator and Pillow's pure-Python format parsers
import cv2  # noqa: F401
import numpy  # noqa: F401
import pydantic  # noqa: F401
from PIL import Image

from redaction.errors import CorruptImage, InputError
from redaction.policy import Limits

WALKED = ["redaction.io", "redaction.containers", "redaction.metadata"]
with atheris.instrument_imports(include=[*WALKED, "PIL"]):
    from PIL import (  # noqa: F401
        BmpImagePlugin,
        ImageFile,
        JpegImagePlugin,
        PngImagePlugin,
        TiffImagePlugin,
        WebPImagePlugin,
    )

    from redaction.io import decode_image
    from redaction.metadata import metadata_inventory

Image.init()

LIMITS = Limits(max_bytes=2 * 1024 * 1024, max_pixels=4_000_000)


def one_input(data: bytes) -> None:
    try:
        items = metadata_inventory(data)
    except CorruptImage:
        pass
    else:
        if not isinstance(items, list):
            raise AssertionError(f"an inventory that is not a list: {items!r}")
    try:
        decoded = decode_image(data, limits=LIMITS)
    except InputError:
        return
    height, width = decoded.pixels.shape[:2]
    if height * width > LIMITS.max_pixels or decoded.pixels.ndim != 3:
        raise AssertionError(f"decoded {decoded.pixels.shape} past the limits")


def main() -> None:
    atheris.Setup(sys.argv, one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
