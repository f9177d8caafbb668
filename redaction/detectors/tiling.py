"""Helpers shared by detectors: overlapping tiles for large images and box merging.

Boxes travel as float32 rows (x0, y0, x1, y1, score) in image pixels.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np

from redaction.detectors._onnx import FloatArray
from redaction.types import BGRImage, Label, Region


@dataclass(frozen=True, slots=True)
class Window:
    x: int
    y: int
    w: int
    h: int


def resize_by(image: BGRImage, scale: float) -> BGRImage:
    """The image resized by `scale` (at least 1 px a side); the input itself when 1."""
    height, width = image.shape[:2]
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    if size == (width, height):
        return image
    interp = cv2.INTER_LINEAR if scale > 1 else cv2.INTER_AREA
    return np.asarray(cv2.resize(np.ascontiguousarray(image), size, interpolation=interp), np.uint8)


def no_boxes() -> FloatArray:
    return np.zeros((0, 5), np.float32)


def _spans(length: int, tile: int, overlap: int) -> list[tuple[int, int]]:
    """(start, size) of the fewest equal spans of at most `tile` px covering `length`, each
    sharing at least `overlap` px with the next."""
    if length <= tile:
        return [(0, length)]
    count = -(-(length - overlap) // (tile - overlap))
    size = -(-(length + (count - 1) * overlap) // count)
    return [(round(i * (length - size) / (count - 1)), size) for i in range(count)]


def tile_windows(width: int, height: int, *, tile: int, overlap: int) -> list[Window]:
    """Windows of at most `tile` x `tile` px covering the image, neighbours sharing at least
    `overlap` px so that an object narrower than the overlap lies whole in some window."""
    if tile <= overlap:
        raise ValueError("tile must be larger than overlap")
    return [
        Window(x, y, w, h)
        for y, h in _spans(height, tile, overlap)
        for x, w in _spans(width, tile, overlap)
    ]


def detect_tiled(
    image: BGRImage,
    detect: Callable[[BGRImage], FloatArray],
    *,
    tile: int,
    overlap: int,
) -> FloatArray:
    """Run `detect` on every window and return all boxes in image coordinates (unmerged)."""
    height, width = image.shape[:2]
    found = [no_boxes()]
    for win in tile_windows(width, height, tile=tile, overlap=overlap):
        boxes = detect(image[win.y : win.y + win.h, win.x : win.x + win.w]).copy()
        boxes[:, 0:4:2] += win.x
        boxes[:, 1:4:2] += win.y
        found.append(boxes)
    return np.concatenate(found)


_MIN_AREA = 1e-6
"""`_iou`'s floor under the union, in px^2."""


def _iou(a: FloatArray, b: FloatArray) -> FloatArray:
    """Intersection over union of boxes `a` and `b`, broadcast against each other."""
    x0 = np.maximum(a[..., 0], b[..., 0])
    y0 = np.maximum(a[..., 1], b[..., 1])
    x1 = np.minimum(a[..., 2], b[..., 2])
    y1 = np.minimum(a[..., 3], b[..., 3])
    inter = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
    area_a = (a[..., 2] - a[..., 0]) * (a[..., 3] - a[..., 1])
    area_b = (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1])
    return np.asarray(inter / np.maximum(area_a + area_b - inter, _MIN_AREA), dtype=np.float32)


def iou_one(box: FloatArray, others: FloatArray) -> FloatArray:
    """Intersection over union of one box with each of `others`."""
    return _iou(box[None, :], others)


_PAIRWISE_MAX = 2048
"""Up to this many boxes, NMS computes every pairwise IoU at once (16 MiB at the limit); above
it, one row per kept box (same result, less memory)."""


def pairwise_iou(boxes: FloatArray) -> FloatArray:
    """IoU of every box with every box (an n x n matrix)."""
    return _iou(boxes[:, None, :], boxes[None, :, :])


def merge_boxes(boxes: FloatArray, *, iou: float, grow: bool) -> FloatArray:
    """Greedy non-maximum suppression by score. With `grow`, a kept box becomes the union of
    the boxes it suppresses: when passes disagree on a face's extent the mask covers both."""
    boxes = boxes[np.argsort(-boxes[:, 4], kind="stable")]
    if _opencv_can_suppress(boxes):
        survivors = _suppressed_by_opencv(boxes, iou)
        if not grow or len(survivors) == len(boxes):  # none suppressed: none to grow either
            return survivors
    overlaps = pairwise_iou(boxes) >= iou if len(boxes) <= _PAIRWISE_MAX else None
    alive = np.ones(len(boxes), bool)
    kept = []
    for i in range(len(boxes)):
        if not alive[i]:
            continue
        row = overlaps[i] if overlaps is not None else iou_one(boxes[i], boxes) >= iou
        group = alive & row
        group[i] = True
        alive &= ~group
        if grow:
            members = boxes[group]
            kept.append([*members[:, :2].min(axis=0), *members[:, 2:4].max(axis=0), boxes[i, 4]])
        else:
            kept.append(list(boxes[i]))
    return np.asarray(kept, np.float32).reshape(-1, 5)


def _opencv_can_suppress(boxes: FloatArray) -> bool:
    """Whether OpenCV's NMS answers as the loop below: finite boxes, positive scores (it drops
    scores at or under its threshold, which must be >= 0) and areas (it calls two empty boxes
    identical; `_iou` calls them disjoint)."""
    area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    return bool(
        len(boxes)
        and np.isfinite(boxes).all()
        and (boxes[:, 4] > 0).all()
        and (boxes[:, 2] > boxes[:, 0]).all()
        and (boxes[:, 3] > boxes[:, 1]).all()
        and (area >= _MIN_AREA).all()
    )


def _suppressed_by_opencv(boxes: FloatArray, iou: float) -> FloatArray:
    """`merge_boxes(..., grow=False)` of boxes sorted by descending score, in C++: the same
    greedy order (OpenCV sorts stably too, so ties go to the earlier box) and the same rule (a
    box goes when its IoU with a kept box reaches `iou`; OpenCV keeps up to its threshold
    inclusive, hence the float just under `iou`). 10x faster than the loop below on the
    hundreds of low-score candidates CenterFace hands over per photo (bench/README.md)."""
    corners = boxes[:, :4].astype(np.float64)
    rects = np.hstack([corners[:, :2], corners[:, 2:] - corners[:, :2]])
    under = float(np.nextafter(np.float32(iou), np.float32(0)))
    kept = cv2.dnn.NMSBoxes(rects.tolist(), boxes[:, 4].astype(np.float64).tolist(), 0.0, under)
    order = np.sort(np.asarray(kept, np.intp).reshape(-1))
    return np.ascontiguousarray(boxes[order], dtype=np.float32).reshape(-1, 5)


@dataclass(frozen=True, slots=True)
class ScanPlan:
    """Which passes to run on one image."""

    scales: tuple[float, ...]
    """Whole-image passes, as resize factors."""
    tiled: bool
    """Also scan the image at full resolution in overlapping tiles."""


@dataclass(frozen=True, slots=True)
class ScalePolicy:
    """How image size chooses the passes: small images are upscaled (detectors miss objects of
    a few pixels), large ones are tiled at full resolution instead of being shrunk, with a
    whole-image overview at `tile` px for objects larger than a tile."""

    upscale: float = 1.0
    upscale_below: int = 1000
    native_pass: bool = True
    tile: int = 2048
    tile_overlap: int = 256

    def __post_init__(self) -> None:
        if self.upscale < 1 or self.tile <= self.tile_overlap:
            raise ValueError("upscale must be >= 1 and tile larger than tile_overlap")

    def plan(self, width: int, height: int) -> ScanPlan:
        longest = max(width, height)
        if longest <= self.upscale_below and self.upscale > 1:
            scales = (self.upscale, 1.0) if self.native_pass else (self.upscale,)
            return ScanPlan(scales=scales, tiled=False)
        if longest <= self.tile:
            return ScanPlan(scales=(1.0,), tiled=False)
        return ScanPlan(scales=(self.tile / longest,), tiled=True)


def scan(
    image: BGRImage,
    one_pass: Callable[[BGRImage, float], FloatArray],
    *,
    policy: ScalePolicy,
    nms_iou: float,
) -> FloatArray:
    """Run `one_pass(image, scale)` as the policy plans and merge everything found."""
    height, width = image.shape[:2]
    plan = policy.plan(width, height)
    passes = [one_pass(image, s) for s in plan.scales]
    if plan.tiled:
        passes.append(
            detect_tiled(
                image,
                lambda crop: one_pass(crop, 1.0),
                tile=policy.tile,
                overlap=policy.tile_overlap,
            )
        )
    return merge_boxes(np.concatenate([no_boxes(), *passes]), iou=nms_iou, grow=True)


def to_regions(
    boxes: FloatArray, *, label: Label, width: int, height: int, detector: str
) -> list[Region]:
    """Whole-pixel regions enclosing each box, clipped to the image; empty boxes dropped."""
    regions = []
    for x0, y0, x1, y1, score in boxes.tolist():
        left, top = max(0, math.floor(x0)), max(0, math.floor(y0))
        right, bottom = min(width, math.ceil(x1)), min(height, math.ceil(y1))
        if right > left and bottom > top:
            regions.append(Region(label, left, top, right - left, bottom - top, score, detector))
    return regions
