"""What a pre-label source finds: plain data in image pixels."""

from __future__ import annotations

from dataclasses import dataclass

from redaction.geometry import box_iou

Point = tuple[float, float]


@dataclass(frozen=True, slots=True)
class Detection:
    """One object: its model class, box in pixels (top-left origin), score in [0, 1], and an
    outline when the source has one (text lines are rotated quads)."""

    model_class: str
    x: float
    y: float
    w: float
    h: float
    score: float
    source: str
    outline: tuple[Point, ...] | None = None

    def iou(self, other: Detection) -> float:
        return box_iou((self.x, self.y, self.w, self.h), (other.x, other.y, other.w, other.h))

    def polygon(self) -> tuple[Point, ...]:
        if self.outline:
            return self.outline
        x0, y0, x1, y1 = self.x, self.y, self.x + self.w, self.y + self.h
        return ((x0, y0), (x1, y0), (x1, y1), (x0, y1))
