"""The primary face detector: CenterFace at full resolution, with a low score threshold.

Measured on faces-masks (bench/face_recall.py), a low threshold at 1x finds small faces better
per millisecond than upscaling: threshold 0.08 at 1x reaches recall@0.9 0.93 below 20 px and
0.99 above, in a quarter of the time of a 2x + 1x scan. Images larger than `ScalePolicy.tile`
are scanned in overlapping full-resolution tiles plus a whole-image overview, never shrunk;
passes are merged by non-maximum suppression, the kept box growing to the union of the boxes
it absorbs, and boxes are extended towards the chin (see `chin`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from redaction.detectors._onnx import FloatArray
from redaction.detectors.base import ModelInfo
from redaction.detectors.borders import (
    BORDER_MODE,
    BORDER_PAD,
    BORDER_PLACE,
    BorderMode,
    BorderPlace,
    centres_inside,
    pad_for_borders,
)
from redaction.detectors.centerface import CenterFaceModel
from redaction.detectors.tiling import ScalePolicy, merge_boxes, scan, to_regions
from redaction.types import BGRImage, Label, Region

FACE_SCALES = ScalePolicy(upscale=1.0, tile=2048, tile_overlap=256)
"""Default passes: full resolution; tiles above 2048 px."""

THOROUGH_FACE_SCALES = ScalePolicy(upscale=2.0, upscale_below=1000, tile=2048, tile_overlap=256)
"""Small images also at 2x: recall 0.977 below 20 px at threshold 0.1, ~5x the CPU time."""


class CenterFaceDetector:
    """Faces by CenterFace. Raises `DetectorFailed` when the model cannot load or run.

    `threshold`: heatmap score to keep a candidate. `scales`: which passes to run. `flip`: also
    scan the mirror image (test-time augmentation, twice the time). `chin`: share of the box
    height added below each box. `nms_iou`: overlap above which boxes are merged. `threads`:
    onnxruntime intra-op threads (the worker pool runs one process per core). `quantized`: run
    the bundled int8 build (the registry's default; see bench/README.md for its recall)."""

    name = "centerface"

    def __init__(
        self,
        *,
        threshold: float = 0.08,
        scales: ScalePolicy = FACE_SCALES,
        flip: bool = False,
        chin: float = 0.1,
        nms_iou: float = 0.3,
        threads: int = 1,
        model_path: Path | None = None,
        quantized: bool = False,
        border_pad: int | None = BORDER_PAD,
        border_mode: BorderMode = BORDER_MODE,
        border_place: BorderPlace = BORDER_PLACE,
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
        if border_pad is not None and border_pad < 0:
            raise ValueError("border_pad must be >= 0")
        self.border_pad = border_pad
        self.border_mode = border_mode
        self.border_place = border_place
        self._model = CenterFaceModel(model_path=model_path, threads=threads, quantized=quantized)
        self.model: ModelInfo = self._model.info

    def detect(self, image: BGRImage) -> list[Region]:
        height, width = image.shape[:2]
        return to_regions(
            self.boxes(image), label=Label.FACE, width=width, height=height, detector=self.name
        )

    def boxes(self, image: BGRImage) -> FloatArray:
        """Merged boxes as rows (x0, y0, x1, y1, score) in image pixels."""
        boxes = self._scan_padded(image)
        if boxes is None:
            boxes = scan(image, self._one_pass, policy=self.scales, nms_iou=self.nms_iou)
        # CenterFace's boxes reach above the brow but stop short of the chin, more so over
        # a mask: extend them downwards (measured on faces-masks and faces-dlib)
        boxes[:, 3] += self.chin * (boxes[:, 3] - boxes[:, 1])
        boxes[:, 3] = np.minimum(boxes[:, 3], image.shape[0])
        return boxes

    def _scan_padded(self, image: BGRImage) -> FloatArray | None:
        """`scan` of the image with `border_pad` context around it (`borders.pad_for_borders`),
        boxes in image pixels; None when padding is off or the padded image would be tiled
        (tiles have inner edges: large images are scanned unpadded)."""
        if self.border_pad is None:
            return None
        padded, left, top = pad_for_borders(
            image, minimum=self.border_pad, mode=self.border_mode, place=self.border_place
        )
        if self.scales.plan(padded.shape[1], padded.shape[0]).tiled:
            return None
        height, width = image.shape[:2]
        window = (left, top, left + width, top + height)

        def one_pass(pixels: BGRImage, scale: float) -> FloatArray:
            return self._one_pass(pixels, scale, inside=window)

        boxes = scan(padded, one_pass, policy=self.scales, nms_iou=self.nms_iou)
        boxes[:, 0:4:2] -= left
        boxes[:, 1:4:2] -= top
        return boxes

    def _one_pass(
        self, image: BGRImage, scale: float, inside: tuple[int, int, int, int] | None = None
    ) -> FloatArray:
        """One scale (and its mirror image when `flip`), suppressed within the pass; with
        `inside`, only boxes centred in that window (x0, y0, x1, y1) count."""
        found = self._model.boxes(image, scale=scale, threshold=self.threshold)
        if self.flip:
            mirrored = self._model.boxes(image[:, ::-1], scale=scale, threshold=self.threshold)
            width = image.shape[1]
            mirrored[:, [0, 2]] = width - mirrored[:, [2, 0]]
            found = np.concatenate([found, mirrored])
        if inside is not None:
            found = found[centres_inside(found, inside)]
        return merge_boxes(found, iou=self.nms_iou, grow=False)
