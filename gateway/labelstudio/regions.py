"""Label Studio's annotation results as shapes in image pixels (pure: JSON in, shapes out).

Label Studio stores regions as percentages of the image with whatever decimals the editor
produced (`"x": 30.769230769230766`); every shape here keeps them as floats, unrounded, so the
exports carry Label Studio's numbers at full precision. The conversions follow Label Studio's
own converter (label_studio_sdk.converter), which the tests use as the oracle: the size comes
from the result's `original_width`/`original_height` (the image the annotator saw), a rotated
rectangle becomes its axis-aligned bounding box, and a brush mask (Label Studio's RGBA RLE)
becomes one polygon per outer contour of its alpha channel.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from gateway.datasets import ControlType
from gateway.labelstudio.config import PRIVACY_FLAG_NAME, control_of


@dataclass(frozen=True, slots=True)
class Box:
    label: str
    x: float  # pixels, top-left
    y: float
    w: float
    h: float
    region_id: str | None = None


@dataclass(frozen=True, slots=True)
class Polygon:
    label: str
    points: tuple[float, ...]  # x1, y1, x2, y2, ... in pixels


@dataclass(frozen=True, slots=True)
class Keypoint:
    label: str
    x: float
    y: float
    parent_id: str | None = None  # the box it was drawn in, if any


@dataclass(frozen=True, slots=True)
class Mask:
    """A brush mask as Label Studio's converter exports it: outer contours, whole pixels."""

    label: str
    contours: tuple[tuple[int, ...], ...]
    boxes: tuple[tuple[int, int, int, int], ...]
    areas: tuple[int, ...]


@dataclass
class ImageLabels:
    asset_id: str
    width: int
    height: int
    boxes: list[Box] = field(default_factory=list)
    polygons: list[Polygon] = field(default_factory=list)
    keypoints: list[Keypoint] = field(default_factory=list)
    masks: list[Mask] = field(default_factory=list)
    choices: list[str] = field(default_factory=list)
    skipped: int = 0  # results no export can carry (unknown controls or labels)

    def keep_only(self, known: set[str]) -> None:
        """Drop regions whose label is no longer in the ontology (counted as skipped)."""
        before = self.count()
        self.boxes = [b for b in self.boxes if b.label in known]
        self.polygons = [p for p in self.polygons if p.label in known]
        self.keypoints = [k for k in self.keypoints if k.label in known]
        self.masks = [m for m in self.masks if m.label in known]
        self.choices = [c for c in self.choices if c in known]
        self.skipped += before - self.count()

    def count(self) -> int:
        shapes = (self.boxes, self.polygons, self.keypoints, self.masks, self.choices)
        return sum(len(s) for s in shapes)


def image_labels(
    asset_id: str, result: Iterable[dict[str, Any]], *, width: int, height: int
) -> ImageLabels:
    """One annotation's result as shapes; `width`/`height` when a result carries no size."""
    image = ImageLabels(asset_id, width, height)
    for item in result:
        if item.get("from_name") == PRIVACY_FLAG_NAME:
            continue  # a report about the image, not a label of it
        value = item.get("value") or {}
        w = _number(item.get("original_width"), width)
        h = _number(item.get("original_height"), height)
        if item.get("original_width") and item.get("original_height"):
            image.width, image.height = int(w), int(h)
        try:
            _add(image, control_of(str(item.get("from_name"))), item, value, w, h)
        except (KeyError, TypeError, ValueError, IndexError):
            image.skipped += 1  # a malformed region is left out and counted, never a crash
    return image


def _add(
    image: ImageLabels,
    control: ControlType | None,
    item: dict[str, Any],
    value: dict[str, Any],
    w: float,
    h: float,
) -> None:
    region_id = item.get("id")
    if control is ControlType.BOX:
        x, y, bw, bh = rotated_bounds(value)
        for label in value.get("rectanglelabels") or []:
            box = Box(label, x * w / 100, y * h / 100, bw * w / 100, bh * h / 100, region_id)
            image.boxes.append(box)
    elif control is ControlType.POLYGON:
        flat = tuple(
            c for px, py in value.get("points") or [] for c in (px * w / 100, py * h / 100)
        )
        image.polygons += [Polygon(label, flat) for label in value.get("polygonlabels") or []]
    elif control is ControlType.KEYPOINT:
        x, y, parent = value["x"] * w / 100, value["y"] * h / 100, item.get("parentID")
        image.keypoints += [Keypoint(lb, x, y, parent) for lb in value.get("keypointlabels") or []]
    elif control is ControlType.BRUSH and value.get("format", "rle") == "rle":
        image.masks += [
            mask_of(label, value["rle"], int(w), int(h)) for label in value.get("brushlabels") or []
        ]
    elif control is ControlType.CHOICE:
        image.choices += [str(c) for c in value.get("choices") or []]
    else:
        image.skipped += 1


def _number(value: Any, default: float) -> float:
    return float(value) if isinstance(value, int | float) and value else float(default)


def rotated_bounds(value: dict[str, Any]) -> tuple[float, float, float, float]:
    """x, y, width, height (percent) of the axis-aligned box around a rectangle that Label
    Studio rotated by `rotation` degrees about its top-left corner (its converter's maths)."""
    x, y, w, h = (float(value[k]) for k in ("x", "y", "width", "height"))
    rotation = float(value.get("rotation") or 0.0)
    if rotation == 0 or w == 0:
        return x, y, w, h
    alpha, beta = math.atan(h / w), math.pi * rotation / 180
    radius = math.sqrt((w / 2) ** 2 + (h / 2) ** 2)
    cx = x - radius * (math.cos(math.pi - alpha - beta) - math.cos(math.pi - alpha)) + w / 2
    cy = y + radius * (math.sin(math.pi - alpha - beta) - math.sin(math.pi - alpha)) + h / 2
    angles = (
        alpha + beta,
        math.pi - alpha + beta,
        math.pi + alpha + beta,
        2 * math.pi - alpha + beta,
    )
    xs = [cx + radius * math.cos(t) for t in angles]
    ys = [cy + radius * math.sin(t) for t in angles]
    return min(xs), min(ys), max(xs) - min(xs), max(ys) - min(ys)


def mask_of(label: str, rle: list[int] | str, width: int, height: int) -> Mask:
    """Label Studio's RLE (RGBA, row-major) -> outer contours of the painted pixels."""
    # deferred: OpenCV, NumPy and the SDK's RLE decoder only for brush masks
    import cv2
    import numpy as np
    from label_studio_sdk.converter.brush import decode_rle

    data = rle.encode() if isinstance(rle, str) else rle
    pixels = np.reshape(decode_rle(data), (height, width, 4))
    alpha = np.ascontiguousarray(pixels[:, :, 3]).astype("uint8")
    found, _ = cv2.findContours(alpha, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    kept = [c for c in found if len(c) >= 3]
    return Mask(
        label,
        tuple(tuple(int(v) for v in c.reshape(-1)) for c in kept),
        tuple(tuple(int(v) for v in cv2.boundingRect(c)) for c in kept),  # type: ignore[misc]
        tuple(int(cv2.contourArea(c)) for c in kept),
    )


def polygon_area(points: tuple[float, ...]) -> float:
    """Shoelace area of a flat x1, y1, x2, y2, ... polygon."""
    xs, ys = points[0::2], points[1::2]
    n = len(xs)
    twice = sum(xs[i] * ys[i - 1] - ys[i] * xs[i - 1] for i in range(n))
    return abs(twice) / 2
