"""Licence plates found as plate-shaped, plate-like text by the PP-OCRv4 models.

No permissively licensed plate detector ships in a package, so we look for text lines that look
like a plate: aspect ratio, size, and (when big enough to be read) a short run of letters and
digits. Two detector passes: one upscaled 2x for far plates, one at about native resolution
(0.75x of it when the far pass runs at its full 2x) for near plates and the looser boxes around
plate frames. The recogniser only reads the few boxes that already have a plate's shape, in
batches as wide as their widest crop. Each step runs in bf16 where the CPU has it (avx512_bf16
or AMX; read back, f32 elsewhere): recall measured per setting in bench/README.md.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from redaction.detectors.base import ModelInfo
from redaction.detectors.busy_rows import busy_row_band
from redaction.detectors.ocr import Reading, TextBox, TextDetectorModel, TextRecognizerModel
from redaction.detectors.runtime import Runtime, bf16_runtime
from redaction.errors import DetectorFailed
from redaction.types import BGRImage, Label, Region

_ALNUM = re.compile(r"[A-Za-z0-9]")
Precision = Literal["f32", "bf16"]
FarRows = Literal["busy", "all"]
log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class PlateShape:
    """What a plate's text line looks like. Heights in source pixels."""

    min_aspect: float = 1.2
    max_aspect: float = 12.0
    min_height: float = 6.0
    min_chars: int = 3
    max_chars: int = 10
    read_min_height: float = 20.0
    """Below this text height the recogniser is unreliable: shape alone decides."""

    def fits(self, box: TextBox) -> bool:
        height = box.height
        return height >= self.min_height and (
            self.min_aspect <= box.width / height <= self.max_aspect
        )

    sure_score: float = 0.8
    """A reading at least this confident may overrule shape at any readable height..."""
    sure_min_height: float = 8.0
    """...from this text height up: confident words in another script (CJK), or mostly in
    lower case, are not plates (watermarks, shop signs; measured in bench/README.md)."""

    def reads_like_plate(self, box: TextBox, text: str, score: float = 0.0) -> bool:
        chars = len(_ALNUM.findall(text))
        if chars > self.max_chars:
            return False
        if score >= self.sure_score and box.height >= self.sure_min_height:
            if not plate_like_text(text):
                return False
        return box.height < self.read_min_height or chars >= self.min_chars


def plate_like_text(text: str) -> bool:
    """Mostly Latin letters and digits (the recogniser's character set is mainly Chinese, and
    it now and then reads a plate's `B` as `日`; separators such as `·` do not count), with no
    more lower-case letters than upper-case letters and digits (plates are in capitals)."""
    latin = sum(c.isascii() and c.isalnum() for c in text)
    other = sum(c.isalpha() and not c.isascii() for c in text)
    if other >= latin:
        return False
    lower = sum(c.islower() for c in text)
    upper = sum(c.isupper() or c.isdigit() for c in text)
    return lower <= upper


def pass_scales(
    width: int,
    height: int,
    *,
    far_pass: bool,
    far_scale: float,
    max_far_pixels: int,
    near_with_far: float = 1.0,
) -> list[float]:
    """Detector scales for an image: near pass at most 1600 px long, far pass capped in pixels.

    When the far pass runs at its full `far_scale` over the near pass (not cut by the pixel
    cap), it sees every plate the near pass sees at `far_scale` times the size, so the near
    pass runs at `near_with_far` of its scale: it is left only the plates too big for the
    far pass. When the cap cuts the far pass, the near pass keeps its full scale."""
    near = min(1.0, 1600 / max(width, height))
    scales = [near]
    if far_pass:
        far = min(far_scale, math.sqrt(max_far_pixels / (width * height)))
        if far > near * 1.25:
            if far >= near * far_scale * 0.999:
                scales[0] = near * near_with_far
            scales.append(far)
    return scales


class PlateDetector:
    """Detector protocol implementation for licence plates (label `plate`)."""

    name = "pp-ocrv4-plates"

    def __init__(
        self,
        *,
        threshold: float = 0.3,
        far_pass: bool = True,
        far_scale: float = 2.0,
        max_far_pixels: int = 4_000_000,
        far_precision: Precision = "bf16",
        near_precision: Precision = "bf16",
        far_threshold: float | None = None,
        near_with_far: float = 0.75,
        far_rows: FarRows = "busy",
        read_precision: Precision = "bf16",
        read_min_width: int = 160,
        shape: PlateShape | None = None,
        threads: int = 1,
        det_model_path: Path | None = None,
        rec_model_path: Path | None = None,
        text_detector: TextDetectorModel | None = None,
        far_text_detector: TextDetectorModel | None = None,
        recognizer: TextRecognizerModel | None = None,
        runtime: Runtime = "auto",
    ) -> None:
        self._threshold = threshold
        self._far_threshold = threshold if far_threshold is None else far_threshold
        self._detector = text_detector or self._pass_model(
            near_precision, runtime=runtime, path=det_model_path, threads=threads
        )
        self._far_detector = far_text_detector or self._far_model(
            far_precision, near_precision, runtime=runtime, path=det_model_path, threads=threads
        )
        self._recognizer = recognizer or TextRecognizerModel(
            model_path=rec_model_path,
            threads=threads,
            runtime=bf16_runtime(runtime) if read_precision == "bf16" else runtime,
            min_width=read_min_width,
        )
        self.precisions = {
            "near": self._detector.precision,
            "far": self._far_detector.precision,
            "read": self._recognizer.precision,
        }
        """The precision each pass actually runs in (read back from the runtime)."""
        asked_for = (("near", near_precision), ("far", far_precision), ("read", read_precision))
        for step, asked in asked_for:
            if asked != self.precisions[step]:
                log.warning(
                    "plate step %s asked for %s but runs in %s (bf16 needs OpenVINO and "
                    "avx512_bf16 or AMX): more CPU than bf16, recall as measured in f32",
                    step,
                    asked,
                    self.precisions[step],
                )
        log.info("plate passes run in: near %(near)s, far %(far)s, read %(read)s", self.precisions)
        self._far_pass = far_pass
        self._far_scale = far_scale
        self._max_far_pixels = max_far_pixels
        self._near_with_far = near_with_far
        self._far_rows = far_rows
        self._shape = shape or PlateShape()
        self.model: ModelInfo = self._detector.info
        self.models: tuple[ModelInfo, ...] = (self._detector.info, self._recognizer.info)

    def _far_model(
        self,
        precision: Precision,
        near_precision: Precision,
        *,
        runtime: Runtime,
        path: Path | None,
        threads: int,
    ) -> TextDetectorModel:
        """The far pass's detector: the near pass's own when both ask for the same precision
        (or when there is no bf16 runner: onnxruntime, or OpenVINO missing), else its own."""
        if precision == near_precision or bf16_runtime(runtime) == runtime:
            return self._detector
        return self._pass_model(precision, runtime=runtime, path=path, threads=threads)

    def _pass_model(
        self, precision: Precision, *, runtime: Runtime, path: Path | None, threads: int
    ) -> TextDetectorModel:
        """A pass's detector; in bf16 OpenVINO's bf16 runner (the same file), which runs f32 on
        a CPU without bf16 (read back, logged by the caller). Loaded models are shared."""
        return TextDetectorModel(
            model_path=path,
            threads=threads,
            box_threshold=min(self._threshold, self._far_threshold),
            runtime=bf16_runtime(runtime) if precision == "bf16" else runtime,
        )

    def _far_boxes(self, image: BGRImage, scale: float) -> list[TextBox]:
        """The far pass: over the rows that can hold text (`busy_rows.py`), or every row."""
        rows = busy_row_band(image) if self._far_rows == "busy" else (0, image.shape[0])
        return _far_boxes_in_rows(self._far_detector, image, scale, rows)

    def detect(self, image: BGRImage) -> list[Region]:
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise DetectorFailed("plate detector needs an HxWx3 uint8 BGR image")
        h, w = image.shape[:2]
        candidates: list[TextBox] = []
        scales = pass_scales(
            w,
            h,
            far_pass=self._far_pass,
            far_scale=self._far_scale,
            max_far_pixels=self._max_far_pixels,
            near_with_far=self._near_with_far,
        )
        for index, scale in enumerate(scales):
            far = index == 1
            threshold = self._far_threshold if far else self._threshold
            found = (
                self._far_boxes(image, scale) if far else self._detector.detect(image, scale=scale)
            )
            candidates.extend(b for b in found if b.score >= threshold and self._shape.fits(b))
        regions = []
        for box in select_plates(
            candidates, lambda boxes: self._recognizer.read(image, boxes), self._shape
        ):
            x, y, bw, bh = box.bbox()
            regions.append(Region(Label.PLATE, x, y, bw, bh, box.score, self.name))
        return regions


def _far_boxes_in_rows(
    detector: TextDetectorModel, image: BGRImage, scale: float, rows: tuple[int, int]
) -> list[TextBox]:
    """The far pass over rows `rows` (y0, y1) only, boxes in the whole image's pixels."""
    y0, y1 = rows
    if y1 <= y0:
        return []
    boxes = detector.detect(image[y0:y1], scale=scale)
    return [box.shifted(0, y0) for box in boxes] if y0 else boxes


def select_plates(
    candidates: list[TextBox],
    read: Callable[[list[TextBox]], list[Reading]],
    shape: PlateShape,
) -> list[TextBox]:
    """The candidates that read like plates, each text line once. A box lying inside a larger
    one (the same text at two scales) is read only if the larger one is not a plate: a long
    line over a truck's side that the recogniser rejects must not hide the 15 px plate the far
    pass found inside it (measured: bench/README.md, plate passes)."""
    plates: list[TextBox] = []
    pending = candidates
    while pending:
        kept = drop_nested(pending)
        rejected = []
        for box, reading in zip(kept, read(kept), strict=True):
            if shape.reads_like_plate(box, reading.text, reading.score):
                plates.append(box)
            else:
                rejected.append(box)
        pending = [
            box
            for box in pending
            if not any(box is k for k in kept)
            and _nested_in(box, rejected)
            and not _nested_in(box, plates)
        ]
    return plates


def _nested_in(box: TextBox, others: list[TextBox], inside: float = 0.8) -> bool:
    x, y, w, h = box.bbox()
    return any(_overlap((x, y, w, h), o.bbox()) >= inside * w * h for o in others)


def drop_nested(boxes: list[TextBox], *, inside: float = 0.8) -> list[TextBox]:
    """Drop boxes lying mostly inside a larger kept one (the same text seen at two scales)."""
    kept: list[TextBox] = []
    for box in sorted(boxes, key=lambda b: b.width * b.height, reverse=True):
        if not _nested_in(box, kept, inside):
            kept.append(box)
    return kept


def _overlap(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> int:
    dx = min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0])
    dy = min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1])
    return max(0, dx) * max(0, dy)
