"""What a pre-label source finds: plain data in image pixels."""

from __future__ import annotations

from dataclasses import dataclass

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


def box_iou(a: tuple[float, float, float, float], b: tuple[float, float, float, float]) -> float:
    dx = min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0])
    dy = min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1])
    inter = max(0.0, dx) * max(0.0, dy)
    union = a[2] * a[3] + b[2] * b[3] - inter
    return inter / union if union > 0 else 0.0
