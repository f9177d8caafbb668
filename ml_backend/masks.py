"""Person outlines from person boxes, for PolygonLabels and BrushLabels pre-labels.

A box is a poor polygon or brush mask for a person. GrabCut (the same segmentation as the
interactive assist, `assist.segment`, seeded by the box) at a small working size turns each kept
person box into the person's outline; its largest component's polygon becomes the detection's
outline, which the results turn into polygon points or an RLE mask. When GrabCut keeps too little
of the box (a person it could not separate from a busy background) the box stays as it is.
Measured in bench/ml_backend.py (time per person, share of the box kept).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from ml_backend.assist import Seed, outline, segment
from ml_backend.detections import Detection
from redaction.types import BGRImage

WORK_SIDE = 160
"""GrabCut works on the box (and a margin) scaled to this long side: ~50 ms CPU a person
(bench/results/ml_backend-2026-12-02.md)."""
MAX_PERSONS = 25
"""Outlines for at most this many persons per image (best scores first); the rest keep boxes."""
_MIN_KEPT = 0.15
MASKED_CLASSES = frozenset({"person"})


def person_outline(image: BGRImage, det: Detection) -> tuple[tuple[float, float], ...] | None:
    """The person's outline inside (and around) the box, or None when GrabCut finds too little."""
    h, w = image.shape[:2]
    x0, y0 = int(max(0, det.x)), int(max(0, det.y))
    x1, y1 = int(min(w, det.x + det.w)), int(min(h, det.y + det.h))
    if x1 - x0 < 4 or y1 - y0 < 4:
        return None
    mask = segment(image, Seed(rect=(x0, y0, x1 - x0, y1 - y0)), work_side=WORK_SIDE)
    if mask is None:
        return None
    inside = float(np.count_nonzero(mask[y0:y1, x0:x1])) / ((x1 - x0) * (y1 - y0))
    if inside < _MIN_KEPT:
        return None
    points = outline(mask)
    return tuple(points) if len(points) >= 3 else None


def with_outlines(
    image: BGRImage,
    detections: Sequence[Detection],
    *,
    wanted: Callable[[Detection], bool],
) -> list[Detection]:
    """The detections, the best `MAX_PERSONS` wanted person boxes given outlines."""
    ranked = sorted(
        (i for i, d in enumerate(detections) if d.model_class in MASKED_CLASSES and wanted(d)),
        key=lambda i: -detections[i].score,
    )[:MAX_PERSONS]
    out = list(detections)
    for i in ranked:
        det = detections[i]
        points = person_outline(image, det)
        if points is not None:
            out[i] = Detection(
                det.model_class, det.x, det.y, det.w, det.h, det.score, det.source, points
            )
    return out
