"""Detections -> Label Studio results for a project's controls, in percent coordinates.

Each result carries its `score`; the prediction's score is the task's certainty: the lowest
score among the results it keeps, or, when it keeps none, one minus the best rejected candidate.
Sorting the Data Manager by prediction score, ascending, puts the least certain tasks first.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
from label_studio_sdk.converter.brush import mask2rle

from ml_backend.detections import Detection, Point
from ml_backend.labelconfig import ControlKind, ControlSpec, ProjectSchema
from ml_backend.mapping import LabelMapping

KEYPOINT_WIDTH = 0.6
"""Label Studio draws a keypoint with this radius, in percent of the image width."""
_DEDUP_IOU = 0.5


@dataclass(frozen=True, slots=True)
class Labelled:
    """A detection the project has a label for."""

    detection: Detection
    control: ControlSpec
    label: str


@dataclass(frozen=True, slots=True)
class ImageFrame:
    width: int
    height: int

    def pct_x(self, px: float) -> float:
        return round(min(100.0, max(0.0, px * 100.0 / self.width)), 4)

    def pct_y(self, py: float) -> float:
        return round(min(100.0, max(0.0, py * 100.0 / self.height)), 4)


def label_detections(
    detections: Iterable[Detection], *, schema: ProjectSchema, mapping: LabelMapping
) -> list[Labelled]:
    """Every (detection, control, label) the project can take, duplicates across sources merged."""
    out: list[Labelled] = []
    for control in schema.controls:
        for det in sorted(detections, key=lambda d: -d.score):
            label = mapping.label_for(control, det.model_class)
            if label is None:
                continue
            same = (o for o in out if o.control is control and o.label == label)
            if any(o.detection.iou(det) > _DEDUP_IOU for o in same):
                continue
            out.append(Labelled(det, control, label))
    return out


def build_prediction(
    labelled: Sequence[Labelled],
    *,
    frame: ImageFrame,
    threshold: Callable[[Labelled], float],
    model_version: str,
) -> dict[str, Any]:
    """One Label Studio prediction: {result, score, model_version}."""
    kept = [item for item in labelled if item.detection.score >= threshold(item)]
    rejected = [item.detection.score for item in labelled if item.detection.score < threshold(item)]
    result: list[dict[str, Any]] = []
    for item in kept:
        if item.control.kind is not ControlKind.CHOICES:
            result.append(region_result(item, frame=frame))
    result.extend(choice_results(kept, frame=frame))
    if kept:
        certainty = min(item.detection.score for item in kept)
    else:
        certainty = 1.0 - max(rejected, default=0.0)
    return {"result": result, "score": round(certainty, 4), "model_version": model_version}


def region_result(item: Labelled, *, frame: ImageFrame) -> dict[str, Any]:
    det, control = item.detection, item.control
    value: dict[str, Any]
    if control.kind is ControlKind.RECTANGLE:
        value = {
            "x": frame.pct_x(det.x),
            "y": frame.pct_y(det.y),
            "width": frame.pct_x(det.w),
            "height": frame.pct_y(det.h),
            "rotation": 0,
        }
    elif control.kind is ControlKind.POLYGON:
        value = {"points": polygon_points(det.polygon(), frame=frame), "closed": True}
    elif control.kind is ControlKind.KEYPOINT:
        value = {
            "x": frame.pct_x(det.x + det.w / 2),
            "y": frame.pct_y(det.y + det.h / 2),
            "width": KEYPOINT_WIDTH,
        }
    else:
        value = {"format": "rle", "rle": polygon_rle(det.polygon(), frame=frame)}
    value[control.kind.value] = [item.label]
    return envelope(control, value, score=det.score, frame=frame)


def choice_results(kept: Sequence[Labelled], *, frame: ImageFrame) -> list[dict[str, Any]]:
    by_control: dict[str, list[Labelled]] = {}
    for item in kept:
        if item.control.kind is ControlKind.CHOICES:
            by_control.setdefault(item.control.name, []).append(item)
    results = []
    for items in by_control.values():
        control = items[0].control
        best: dict[str, float] = {}
        for item in items:
            best[item.label] = max(best.get(item.label, 0.0), item.detection.score)
        ranked = sorted(best.items(), key=lambda kv: -kv[1])
        chosen = ranked[:1] if control.single_choice else ranked
        value = {"choices": [label for label, _ in chosen]}
        results.append(envelope(control, value, score=min(s for _, s in chosen), frame=frame))
    return results


def envelope(
    control: ControlSpec, value: dict[str, Any], *, score: float, frame: ImageFrame
) -> dict[str, Any]:
    digest = hashlib.sha256(repr((control.name, sorted(value.items()))).encode()).hexdigest()
    return {
        "id": digest[:10],
        "from_name": control.name,
        "to_name": control.to_name,
        "type": control.kind.value,
        "value": value,
        "score": round(float(score), 4),
        "original_width": frame.width,
        "original_height": frame.height,
        "image_rotation": 0,
        "readonly": False,
    }


def polygon_points(points: Sequence[Point], *, frame: ImageFrame) -> list[list[float]]:
    return [[frame.pct_x(x), frame.pct_y(y)] for x, y in points]


def polygon_rle(points: Sequence[Point], *, frame: ImageFrame) -> list[int]:
    mask = np.zeros((frame.height, frame.width), dtype=np.uint8)
    cv2.fillPoly(mask, [np.round(np.asarray(points)).astype(np.int32)], 255)
    return mask_rle(mask)


def mask_rle(mask: np.ndarray[Any, np.dtype[np.uint8]]) -> list[int]:
    """Label Studio's brush RLE (label-studio-sdk's converter) of a 0/255 mask."""
    return [int(v) for v in mask2rle(mask)]  # type: ignore[no-untyped-call]
