"""Plain data shared by detectors, operators and the engine."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

import numpy as np
import numpy.typing as npt

BGRImage = npt.NDArray[np.uint8]
"""An image as OpenCV holds it: height x width x 3, uint8, BGR order."""


class Label(StrEnum):
    FACE = "face"
    PLATE = "plate"
    TEXT = "text"


class ImageFormat(StrEnum):
    JPEG = "jpeg"
    PNG = "png"
    WEBP = "webp"
    TIFF = "tiff"


@dataclass(frozen=True, slots=True)
class Region:
    """An axis-aligned box in pixel coordinates of the oriented image (top-left origin)."""

    label: Label
    x: int
    y: int
    w: int
    h: int
    score: float
    detector: str

    def expanded(self, margin: float, *, width: int, height: int) -> Region:
        """Grow by `margin` of the box size on every side, clipped to the image."""
        dx = round(self.w * margin)
        dy = round(self.h * margin)
        x0 = max(0, self.x - dx)
        y0 = max(0, self.y - dy)
        x1 = min(width, self.x + self.w + dx)
        y1 = min(height, self.y + self.h + dy)
        return Region(
            self.label, x0, y0, max(0, x1 - x0), max(0, y1 - y0), self.score, self.detector
        )

    def as_dict(self) -> dict[str, object]:
        return {
            "label": str(self.label),
            "x": self.x,
            "y": self.y,
            "w": self.w,
            "h": self.h,
            "score": round(self.score, 4),
            "detector": self.detector,
        }


@dataclass(frozen=True, slots=True)
class DecodedImage:
    """A validated, oriented image ready for detectors."""

    pixels: BGRImage
    source_format: ImageFormat
    orientation_applied: int
    """The EXIF orientation value (1-8) that was applied; 1 when none."""
    had_alpha: bool = False
    notes: tuple[str, ...] = field(default=())

    @property
    def width(self) -> int:
        return int(self.pixels.shape[1])

    @property
    def height(self) -> int:
        return int(self.pixels.shape[0])
