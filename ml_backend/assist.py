"""Interactive assist: a rough rectangle or a keypoint click -> a tight polygon and brush mask.

Label Studio sends the annotator's gesture as `params.context.result` (percent coordinates,
`is_positive` on keypoints). OpenCV's GrabCut, seeded by the rectangle (or by a window around
the clicked points), separates the object from its surroundings; the largest foreground
component becomes a polygon (PolygonLabels) and an RLE mask (BrushLabels). The score is how
well the outline follows image edges (mean gradient on the outline / strong-edge level).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

from ml_backend.labelconfig import ControlKind, ControlSpec, ProjectSchema
from ml_backend.results import ImageFrame, envelope, mask_rle, polygon_points
from redaction.types import BGRImage

log = logging.getLogger(__name__)
Mask = npt.NDArray[np.uint8]
_WORK_SIDE = 480
_ITERATIONS = 4
_POINT_WINDOW = 0.12
_SEED_RADIUS = 0.02


class BadContext(ValueError):
    """The interactive context is not a list of rectangle/keypoint results."""


@dataclass
class Seed:
    label: str | None = None
    rect: tuple[int, int, int, int] | None = None
    positives: list[tuple[int, int]] = field(default_factory=list)
    negatives: list[tuple[int, int]] = field(default_factory=list)


def parse_seed(context: dict[str, Any], *, width: int, height: int) -> Seed | None:
    """The gesture in image pixels, or None when the context holds no rectangle or keypoint."""
    items = context.get("result")
    if not isinstance(items, list):
        raise BadContext("context.result must be a list")
    seed = Seed()
    for item in items:
        if not isinstance(item, dict) or not isinstance(item.get("value"), dict):
            raise BadContext("each context result needs a value object")
        kind, value = item.get("type"), item["value"]
        if kind not in ("rectanglelabels", "keypointlabels"):
            continue
        try:
            x, y = float(value["x"]) * width / 100, float(value["y"]) * height / 100
            if kind == "rectanglelabels":
                w, h = float(value["width"]) * width / 100, float(value["height"]) * height / 100
                seed.rect = _clip_rect(x, y, w, h, width=width, height=height)
            elif kind == "keypointlabels":
                point = (int(min(max(x, 0), width - 1)), int(min(max(y, 0), height - 1)))
                positive = item.get("is_positive", True) not in (False, 0, "0", "false")
                (seed.positives if positive else seed.negatives).append(point)
        except (KeyError, TypeError, ValueError) as exc:
            raise BadContext(f"a {kind} context result lacks numeric coordinates") from exc
        labels = value.get(str(kind))
        if isinstance(labels, list) and labels and isinstance(labels[0], str):
            seed.label = labels[0]
    if seed.rect is None and not seed.positives:
        return None
    return seed


def _clip_rect(
    x: float, y: float, w: float, h: float, *, width: int, height: int
) -> tuple[int, int, int, int]:
    x0, y0 = int(max(0, min(x, width - 2))), int(max(0, min(y, height - 2)))
    x1, y1 = int(min(width, max(x + w, x0 + 2))), int(min(height, max(y + h, y0 + 2)))
    return x0, y0, x1 - x0, y1 - y0


def segment(image: BGRImage, seed: Seed, *, work_side: int = _WORK_SIDE) -> Mask | None:
    """Full-size 0/255 mask of the largest object GrabCut finds, or None.

    In a busy scene GrabCut may find the whole rectangle as busy as its surroundings and keep
    nothing; it then runs again with the rectangle's centre seeded as certain foreground
    (annotators draw boxes around objects, so the centre is the object)."""
    h, w = image.shape[:2]
    rect = seed.rect or _window(seed.positives[0], width=w, height=h)
    rx, ry, rw, rh = rect
    mx, my = max(4, rw // 4), max(4, rh // 4)
    x0, y0 = max(0, rx - mx), max(0, ry - my)
    x1, y1 = min(w, rx + rw + mx), min(h, ry + rh + my)
    roi = image[y0:y1, x0:x1]
    scale = min(1.0, work_side / max(roi.shape[:2]))
    small: Mask = np.asarray(
        roi if scale == 1.0 else cv2.resize(roi, None, fx=scale, fy=scale), dtype=np.uint8
    )
    inner = (
        round((rx - x0) * scale),
        round((ry - y0) * scale),
        max(1, round(rw * scale)),
        max(1, round(rh * scale)),
    )
    init = _initial_mask(small.shape[:2], inner)
    radius = max(2, round(_SEED_RADIUS * min(h, w) * scale))
    for points, value in ((seed.positives, cv2.GC_FGD), (seed.negatives, cv2.GC_BGD)):
        for px, py in points:
            centre = (round((px - x0) * scale), round((py - y0) * scale))
            cv2.circle(init, centre, radius, int(value), -1)
    fg = _grabcut(small, init.copy())
    if fg is None and not seed.positives:
        ix, iy, iw, ih = inner
        centre, axes = (ix + iw // 2, iy + ih // 2), (max(1, iw // 6), max(1, ih // 6))
        cv2.ellipse(init, centre, axes, 0, 0, 360, int(cv2.GC_FGD), -1)
        fg = _grabcut(small, init)
    if fg is None:
        return None
    full = np.zeros((h, w), dtype=np.uint8)
    full[y0:y1, x0:x1] = cv2.resize(fg, (x1 - x0, y1 - y0), interpolation=cv2.INTER_NEAREST)
    return full


def _initial_mask(shape: tuple[int, ...], inner: tuple[int, int, int, int]) -> Mask:
    init = np.full(shape[:2], cv2.GC_BGD, dtype=np.uint8)
    ix, iy, iw, ih = inner
    init[iy : iy + ih, ix : ix + iw] = cv2.GC_PR_FGD
    if not (init == cv2.GC_BGD).any():  # the rectangle fills the image: learn from its frame
        init[[0, -1], :] = cv2.GC_PR_BGD
        init[:, [0, -1]] = cv2.GC_PR_BGD
    return init


def _grabcut(small: Mask, init: Mask) -> Mask | None:
    bgd, fgd = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
    try:
        cv2.grabCut(small, init, None, bgd, fgd, _ITERATIONS, cv2.GC_INIT_WITH_MASK)  # type: ignore[call-overload]
    except cv2.error as exc:
        log.info("GrabCut found no separable object: %s", exc)
        return None
    return _largest_component(np.isin(init, (cv2.GC_FGD, cv2.GC_PR_FGD)).astype(np.uint8) * 255)


def _window(point: tuple[int, int], *, width: int, height: int) -> tuple[int, int, int, int]:
    r = max(8, round(_POINT_WINDOW * min(width, height)))
    return _clip_rect(point[0] - r, point[1] - r, 2 * r, 2 * r, width=width, height=height)


def _largest_component(mask: Mask) -> Mask | None:
    count, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    if count < 2:
        return None
    areas = np.asarray(stats)[1:, cv2.CC_STAT_AREA]
    best = 1 + int(np.argmax(areas))
    component: Mask = (np.asarray(labels) == best).astype(np.uint8) * 255
    return component


def outline(mask: Mask) -> list[tuple[float, float]]:
    contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    contour = max(contours, key=cv2.contourArea)
    approx = cv2.approxPolyDP(contour, 0.004 * cv2.arcLength(contour, True), True)
    return [(float(x), float(y)) for x, y in np.asarray(approx).reshape(-1, 2)]


def edge_score(image: BGRImage, mask: Mask) -> float:
    gray = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    grad = np.asarray(
        cv2.magnitude(
            cv2.Sobel(gray, cv2.CV_32F, 1, 0, ksize=3), cv2.Sobel(gray, cv2.CV_32F, 0, 1, ksize=3)
        ),
        dtype=np.float32,
    )
    edge = cv2.morphologyEx(mask, cv2.MORPH_GRADIENT, np.ones((3, 3), np.uint8)) > 0
    strong = float(np.percentile(grad, 95)) or 1.0
    return float(min(1.0, grad[edge].mean() / strong)) if edge.any() else 0.0


def assist_results(image: BGRImage, seed: Seed, *, schema: ProjectSchema) -> list[dict[str, Any]]:
    """Polygon and brush results for the object under the gesture (empty when none is found)."""
    targets = schema.of_kind(ControlKind.POLYGON, ControlKind.BRUSH)
    if not targets:
        return []
    mask = segment(image, seed)
    if mask is None:
        return []
    h, w = image.shape[:2]
    frame = ImageFrame(w, h)
    score = edge_score(image, mask)
    results = []
    for control in targets:
        label = _label_in(control, seed.label)
        if label is None:
            log.info("control %s has no label matching the gesture's", control.name)
            continue
        value: dict[str, Any]
        if control.kind is ControlKind.POLYGON:
            value = {"points": polygon_points(outline(mask), frame=frame), "closed": True}
        else:
            value = {"format": "rle", "rle": mask_rle(mask)}
        value[control.kind.value] = [label]
        results.append(envelope(control, value, score=score, frame=frame))
    return results


def _label_in(control: ControlSpec, wanted: str | None) -> str | None:
    if wanted is None:
        return control.labels[0].value if len(control.labels) == 1 else None
    for label in control.labels:
        if label.value.lower() == wanted.lower():
            return label.value
    return None
