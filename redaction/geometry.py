"""Box arithmetic shared by the detectors' consumers (no image libraries: cheap to import)."""

from __future__ import annotations

XYWH = tuple[float, float, float, float]
"""An axis-aligned box: left, top, width, height, in any one unit (pixels, percent)."""


def box_iou(a: XYWH, b: XYWH) -> float:
    """Intersection over union of two boxes; 0.0 when neither has area."""
    dx = min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0])
    dy = min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1])
    inter = max(0.0, dx) * max(0.0, dy)
    union = a[2] * a[3] + b[2] * b[3] - inter
    return inter / union if union > 0 else 0.0
