"""Context for faces cut by the image edge.

CenterFace places a face at its centre on a stride-4 grid. A face cut by the image edge has
little around it, and the network pads its input with zeros at the right and bottom only (to a
multiple of 32). Mirroring the image's own pixels a few pixels outwards (`reflect`) lets the
network see the cut face as a whole, symmetric one centred near the edge: on faces-masks photos
cropped through a face (`bench/face_cuts.py`) that found cut faces better than black or
repeated-edge context (bench/README.md, faces at the border).

The mirror also shows every face near the edge a second time, just outside it. Those copies
must not win the non-maximum suppression against the real face (their box lies mostly outside
the image and would be clipped away): a candidate counts only when its centre lies inside the
image, give or take `CENTRE_TOLERANCE`.
"""

from __future__ import annotations

from typing import Final, Literal

import cv2
import numpy as np
import numpy.typing as npt

from redaction.detectors._onnx import FloatArray
from redaction.types import BGRImage

BorderMode = Literal["constant", "reflect", "replicate"]
BorderPlace = Literal["both", "end"]
"""Where the context goes: on both sides of each axis, or only at the right and bottom, where
the network pads anyway (the image then sits where it would unpadded: no shift at all)."""
_BORDER_TYPES: Final = {
    "constant": cv2.BORDER_CONSTANT,
    "reflect": cv2.BORDER_REFLECT_101,
    "replicate": cv2.BORDER_REPLICATE,
}
BORDER_PAD: Final[int | None] = 0
"""Context in pixels added at least on every padded side before the face network runs (None:
the network's own zero padding). 0 with `BORDER_PLACE` "end": the mirrored pixels fill only
the room the network pads to a multiple of 32 anyway, at no cost. Chosen on the development
part of the face split (bench/README.md, faces at the border)."""
BORDER_MODE: Final[BorderMode] = "reflect"
BORDER_PLACE: Final[BorderPlace] = "end"
CENTRE_TOLERANCE: Final = 4.0
"""Pixels a candidate's centre may lie outside the image (one grid cell of CenterFace)."""
_ALIGN: Final = 32
"""The network's input sides are padded to a multiple of this anyway (`centerface._blob`)."""
_STRIDE: Final = 4


def pad_for_borders(
    image: BGRImage, *, minimum: int, mode: BorderMode, place: BorderPlace = "both"
) -> tuple[BGRImage, int, int]:
    """`image` with at least `minimum` px added on every side, each axis rounded up to a
    multiple of 32 px (the size the network pads to anyway, so a few pixels of context often
    cost nothing) and shared between both ends. Returns the padded image and the left and top
    pads, which are multiples of the network's stride so that its output grid falls on the same
    image pixels as without padding (shifting it changes which small faces are found)."""
    if minimum < 0:
        raise ValueError("minimum must be >= 0")
    height, width = image.shape[:2]
    extra_w = -(width + 2 * minimum) % _ALIGN + 2 * minimum
    extra_h = -(height + 2 * minimum) % _ALIGN + 2 * minimum
    if place == "end":
        left = top = 0
    else:
        left = _stride_multiple_at_least(extra_w // 2, minimum)
        top = _stride_multiple_at_least(extra_h // 2, minimum)
    extra_w, extra_h = max(extra_w, left + minimum), max(extra_h, top + minimum)
    if extra_w == 0 and extra_h == 0:
        return image, 0, 0
    padded = cv2.copyMakeBorder(
        np.ascontiguousarray(image), top, extra_h - top, left, extra_w - left,
        _BORDER_TYPES[mode], value=(0, 0, 0),
    )  # fmt: skip
    return np.asarray(padded, np.uint8), left, top


def _stride_multiple_at_least(value: int, minimum: int) -> int:
    rounded = value // _STRIDE * _STRIDE
    return rounded if rounded >= minimum else -(-minimum // _STRIDE) * _STRIDE


def centres_inside(boxes: FloatArray, window: tuple[int, int, int, int]) -> npt.NDArray[np.bool_]:
    """Which rows (x0, y0, x1, y1, score) have their centre in `window` (x0, y0, x1, y1),
    give or take `CENTRE_TOLERANCE`."""
    x0, y0, x1, y1 = window
    cx = (boxes[:, 0] + boxes[:, 2]) / 2
    cy = (boxes[:, 1] + boxes[:, 3]) / 2
    t = CENTRE_TOLERANCE
    inside: npt.NDArray[np.bool_] = (
        (cx >= x0 - t) & (cx <= x1 + t) & (cy >= y0 - t) & (cy <= y1 + t)
    )
    return inside
