"""The primary face detector: CenterFace at several scales, merged so that the mask errs wide.

Small photos are upscaled (CenterFace finds few faces under ~12 px), large ones are tiled at
full resolution instead of being shrunk, and a whole-image pass at a modest size catches faces
larger than a tile. Every pass's boxes are merged by non-maximum suppression; the kept box grows
to the union of the boxes it absorbs.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from redaction.detectors._onnx import FloatArray
from redaction.detectors.base import ModelInfo
from redaction.detectors.centerface import CenterFaceModel
from redaction.detectors.tiling import ScalePolicy, merge_boxes, scan, to_regions
from redaction.types import BGRImage, Label, Region


class CenterFaceDetector:
    """Faces by CenterFace. Raises `DetectorFailed` when the model cannot load or run."""

    name = "centerface"

    def __init__(
        self,
        *,
        threshold: float = 0.2,
        scales: ScalePolicy = ScalePolicy(),  # noqa: B008 - frozen, immutable default
        flip: bool = False,
        chin: float = 0.1,
        nms_iou: float = 0.3,
        threads: int = 1,
        model_path: Path | None = None,
    ) -> None:
        if not 0 < threshold < 1:
            raise ValueError("threshold must be in (0, 1)")
        if threads < 1:
            raise ValueError("threads must be >= 1")
        self.threshold = threshold
        self.scales = scales
        self.flip = flip
        self.chin = chin
        self.nms_iou = nms_iou
        self._model = CenterFaceModel(model_path=model_path, threads=threads)
        self.model: ModelInfo = self._model.info

    def detect(self, image: BGRImage) -> list[Region]:
        height, width = image.shape[:2]
        return to_regions(
            self.boxes(image), label=Label.FACE, width=width, height=height, detector=self.name
        )

    def boxes(self, image: BGRImage) -> FloatArray:
        """Merged boxes as rows (x0, y0, x1, y1, score) in image pixels."""
        boxes = scan(image, self._one_pass, policy=self.scales, nms_iou=self.nms_iou)
        # CenterFace's boxes reach above the brow but stop short of the chin, more so over
        # a mask: extend them downwards (measured on faces-masks and faces-dlib)
        boxes[:, 3] += self.chin * (boxes[:, 3] - boxes[:, 1])
        boxes[:, 3] = np.minimum(boxes[:, 3], image.shape[0])
        return boxes

    def _one_pass(self, image: BGRImage, scale: float) -> FloatArray:
        """One scale (and its mirror image when `flip`), suppressed within the pass."""
        found = self._model.boxes(image, scale=scale, threshold=self.threshold)
        if self.flip:
            mirrored = self._model.boxes(image[:, ::-1], scale=scale, threshold=self.threshold)
            width = image.shape[1]
            mirrored[:, [0, 2]] = width - mirrored[:, [2, 0]]
            found = np.concatenate([found, mirrored])
        return merge_boxes(found, iou=self.nms_iou, grow=False)
