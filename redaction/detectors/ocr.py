"""Text detection and recognition over the PP-OCRv4 ONNX models shipped in `rapidocr_onnxruntime`.

We run the models ourselves (our own pre- and post-processing, following the PaddleOCR/RapidOCR
reference) so that the caller controls the input scale, the thresholds and the thread count, on
OpenVINO when installed, else onnxruntime (`runtime.py`: same fp32 files, about 2x faster on
OpenVINO). One text-detection pass can serve both licence plates and personal text.

Models (Apache-2.0, PaddleOCR, packaged by RapidOCR):
- `ch_PP-OCRv4_det_infer.onnx`: DB text detector, image in, text-probability map out;
- `ch_PP-OCRv4_rec_infer.onnx`: CRNN/SVTR recogniser with CTC output over a 6623-character list
  stored in the model's metadata (`character`).
"""

from __future__ import annotations

import functools
import hashlib
import math
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from importlib import metadata, resources
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt

from redaction.detectors._onnx import onnx_metadata
from redaction.detectors.base import ModelInfo
from redaction.detectors.db_graph import rewrite_db_graph
from redaction.detectors.runtime import GraphRewrite, Runner, Runtime, load_runner
from redaction.errors import DetectorFailed
from redaction.types import BGRImage

OCR_PACKAGE = "rapidocr_onnxruntime"
DET_MODEL_FILE = "ch_PP-OCRv4_det_infer.onnx"
REC_MODEL_FILE = "ch_PP-OCRv4_rec_infer.onnx"
_REC_HEIGHT = 48
_REC_WIDTH_STEP = 32
REC_MIN_WIDTH = 320
"""PaddleOCR's recogniser input width: batches of narrower crops are padded to it."""
_MIN_BOX_SIDE = 3
_DET_NORM = (127.5, 127.5)
"""PaddleOCR's detector input, (x / 255 - 0.5) / 0.5 = (x - 127.5) / 127.5."""

Quad = npt.NDArray[np.float32]
"""Four corners (x, y), clockwise from top-left, in image pixels."""


def packaged_model_path(file_name: str) -> Path:
    """Path of a model file inside the installed `rapidocr_onnxruntime` wheel."""
    return Path(str(resources.files(OCR_PACKAGE) / "models" / file_name))


@functools.lru_cache(maxsize=8)
def model_info(path: Path, *, name: str) -> ModelInfo:
    """Describe a model file for the audit trail (digest computed once from the bytes on disk)."""
    try:
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        version = metadata.version(OCR_PACKAGE)
    except (OSError, metadata.PackageNotFoundError) as exc:
        raise DetectorFailed(f"cannot read OCR model {path}", model=name) from exc
    return ModelInfo(
        name=name,
        file=f"{OCR_PACKAGE}/models/{path.name}",
        package=OCR_PACKAGE,
        package_version=version,
        sha256=digest,
        licence="Apache-2.0",
    )


_RUNNERS: dict[tuple[str, int, str, tuple[float, float] | None, str], Runner] = {}
_RUNNERS_LOCK = threading.Lock()


def open_runner(
    path: Path,
    *,
    threads: int,
    runtime: Runtime = "auto",
    normalise: tuple[float, float] | None = None,
    rewrite: GraphRewrite | None = None,
) -> Runner:
    """The process's loaded model for `path` (loaded once: the plate detector and the
    personal-text OCR share the PP-OCR models); refuses to start without the model."""
    key = (str(path), threads, runtime, normalise, getattr(rewrite, "__name__", ""))
    with _RUNNERS_LOCK:
        runner = _RUNNERS.get(key)
        if runner is None:
            runner = _RUNNERS[key] = load_runner(
                path, threads=threads, runtime=runtime, normalise=normalise, rewrite=rewrite
            )
    return runner


@dataclass(frozen=True, slots=True)
class TextBox:
    """A detected text line: its rotated box and the detector's mean probability inside it."""

    quad: Quad
    score: float

    @property
    def width(self) -> float:
        return float(np.linalg.norm(self.quad[0] - self.quad[1]))

    @property
    def height(self) -> float:
        return float(np.linalg.norm(self.quad[0] - self.quad[3]))

    def bbox(self) -> tuple[int, int, int, int]:
        """Axis-aligned (x, y, w, h) enclosing the quad."""
        x0, y0 = np.floor(self.quad.min(axis=0)).astype(int)
        x1, y1 = np.ceil(self.quad.max(axis=0)).astype(int)
        return int(x0), int(y0), int(x1 - x0), int(y1 - y0)

    def shifted(self, dx: float, dy: float) -> TextBox:
        return TextBox(self.quad + np.array([dx, dy], dtype=np.float32), self.score)


@dataclass(frozen=True, slots=True)
class Reading:
    text: str
    score: float


def order_clockwise(points: npt.NDArray[np.float32]) -> Quad:
    """Order four points as top-left, top-right, bottom-right, bottom-left."""
    by_x = points[np.argsort(points[:, 0])]
    left = by_x[:2][np.argsort(by_x[:2, 1])]
    right = by_x[2:][np.argsort(by_x[2:, 1])]
    return np.array([left[0], right[0], right[1], left[1]], dtype=np.float32)


class TextDetectorModel:
    """DB text detector. `detect` returns text lines in the coordinates of the given image.

    On OpenVINO the graph is rewritten exactly (`db_graph.py`, `exact_graph=True`): the model
    returns logits, thresholded at logit(pixel_threshold), and a box's score is the mean
    sigmoid inside it, as before; about 15% less CPU per pass, the same boxes."""

    def __init__(
        self,
        *,
        model_path: Path | None = None,
        threads: int = 1,
        pixel_threshold: float = 0.3,
        box_threshold: float = 0.5,
        unclip_ratio: float = 1.6,
        runtime: Runtime = "auto",
        exact_graph: bool = True,
    ) -> None:
        path = model_path or packaged_model_path(DET_MODEL_FILE)
        self.info = model_info(path, name="PP-OCRv4 text detector")
        self._runner = open_runner(
            path,
            threads=threads,
            runtime=runtime,
            normalise=_DET_NORM,
            rewrite=rewrite_db_graph if exact_graph else None,
        )
        self.runtime = self._runner.runtime
        self.precision = self._runner.precision
        self.pixel_threshold = pixel_threshold
        self.box_threshold = box_threshold
        self.unclip_ratio = unclip_ratio

    def probability_map(self, image: BGRImage, *, scale: float) -> npt.NDArray[np.float32]:
        """Resize by `scale` (rounded to multiples of 32), run the model, return the map."""
        out = self._raw_map(image, scale=scale)
        return sigmoid(out) if self._runner.logits else out

    def _raw_map(self, image: BGRImage, *, scale: float) -> npt.NDArray[np.float32]:
        """The model's map: logits when the graph was rewritten, probabilities otherwise."""
        h, w = image.shape[:2]
        rh = max(32, round(h * scale / 32) * 32)
        rw = max(32, round(w * scale / 32) * 32)
        resized = np.asarray(cv2.resize(image, (rw, rh), interpolation=cv2.INTER_LINEAR), np.uint8)
        if self._runner.normalises == _DET_NORM:
            out = self._runner.run(resized[None])  # normalised inside the graph
        else:
            out = self._runner.run(detector_blob(resized))
        prob: npt.NDArray[np.float32] = out[0, 0]
        return prob

    def detect(self, image: BGRImage, *, scale: float = 1.0) -> list[TextBox]:
        raw = self._raw_map(image, scale=scale)
        h, w = image.shape[:2]
        return self._boxes(raw, sx=w / raw.shape[1], sy=h / raw.shape[0], width=w, height=h)

    def _boxes(
        self, raw: npt.NDArray[np.float32], *, sx: float, sy: float, width: int, height: int
    ) -> list[TextBox]:
        logits = self._runner.logits
        threshold = _logit(self.pixel_threshold) if logits else self.pixel_threshold
        mask = cv2.dilate((raw > threshold).astype(np.uint8), np.ones((2, 2), np.uint8))
        contours, _ = cv2.findContours(mask, cv2.RETR_LIST, cv2.CHAIN_APPROX_SIMPLE)
        boxes: list[TextBox] = []
        for contour in contours[:1000]:
            (cx, cy), (rw, rh), angle = cv2.minAreaRect(contour)
            if min(rw, rh) < _MIN_BOX_SIDE:
                continue
            points = cv2.boxPoints(((cx, cy), (rw, rh), angle)).astype(np.float32)
            score = _mean_inside(raw, points, logits=logits)
            if score < self.box_threshold:
                continue
            # DB shrinks text kernels; grow back by area * ratio / perimeter (rectangle offset).
            grow = rw * rh * self.unclip_ratio / (2 * (rw + rh))
            grown = cv2.boxPoints(((cx, cy), (rw + 2 * grow, rh + 2 * grow), angle))
            grown[:, 0] = np.clip(np.round(grown[:, 0] * sx), 0, width)
            grown[:, 1] = np.clip(np.round(grown[:, 1] * sy), 0, height)
            quad = order_clockwise(grown.astype(np.float32))
            box = TextBox(quad, score)
            if box.width > _MIN_BOX_SIDE and box.height > _MIN_BOX_SIDE:
                boxes.append(box)
        return boxes


def detector_blob(image: BGRImage) -> npt.NDArray[np.float32]:
    """PaddleOCR's normalisation, (x / 255 - 0.5) / 0.5 = (x - 127.5) * 2 / 255, as a 1x3xHxW
    batch, BGR kept: one OpenCV pass, half the time of three numpy ones (40 ms on a 2x frame)."""
    blob = cv2.dnn.blobFromImage(
        image, scalefactor=2.0 / 255.0, mean=(127.5, 127.5, 127.5), swapRB=False, crop=False
    )
    return np.asarray(blob, dtype=np.float32)


def sigmoid(x: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    out: npt.NDArray[np.float32] = (1.0 / (1.0 + np.exp(-np.clip(x, -88.0, 88.0)))).astype(
        np.float32
    )
    return out


def _logit(p: float) -> float:
    return math.log(p / (1.0 - p))


def _mean_inside(
    raw: npt.NDArray[np.float32], points: npt.NDArray[np.float32], *, logits: bool = False
) -> float:
    """Mean probability inside the polygon `points`; `raw` holds logits when `logits`."""
    h, w = raw.shape
    x0 = int(np.clip(np.floor(points[:, 0].min()), 0, w - 1))
    x1 = int(np.clip(np.ceil(points[:, 0].max()), 0, w - 1))
    y0 = int(np.clip(np.floor(points[:, 1].min()), 0, h - 1))
    y1 = int(np.clip(np.ceil(points[:, 1].max()), 0, h - 1))
    mask = np.zeros((y1 - y0 + 1, x1 - x0 + 1), dtype=np.uint8)
    cv2.fillPoly(mask, [(points - [x0, y0]).astype(np.int32)], 1)
    crop = raw[y0 : y1 + 1, x0 : x1 + 1]
    means = cv2.mean(sigmoid(crop) if logits else crop, mask)
    return float(np.asarray(means).ravel()[0])


class TextRecognizerModel:
    """CTC recogniser: reads the text inside detected boxes.

    `min_width`: the narrowest batch (`rec_batch`). PaddleOCR pads every batch to 320, which
    the personal-text OCR keeps; plates are short, and 160 kept every plate decision of both
    plate sets at half the columns (bench/README.md, plate recogniser)."""

    def __init__(
        self,
        *,
        model_path: Path | None = None,
        threads: int = 1,
        batch_size: int = 8,
        runtime: Runtime = "auto",
        min_width: int = REC_MIN_WIDTH,
    ) -> None:
        if min_width < _REC_HEIGHT:
            raise DetectorFailed(
                f"recogniser batch width {min_width} is under its height {_REC_HEIGHT}",
                min_width=str(min_width),
            )
        path = model_path or packaged_model_path(REC_MODEL_FILE)
        self.info = model_info(path, name="PP-OCRv4 text recogniser")
        self._runner = open_runner(path, threads=threads, runtime=runtime)
        self.runtime = self._runner.runtime
        self.precision = self._runner.precision
        self._min_width = min_width
        try:
            meta = onnx_metadata(path.read_bytes())
        except OSError as exc:
            raise DetectorFailed(f"cannot read OCR model {path}", model=str(path)) from exc
        if "character" not in meta:
            raise DetectorFailed("recogniser model has no character list", model=str(path))
        # CTC blank at index 0, a space appended at the end (PaddleOCR convention).
        self._characters = ["", *meta["character"].splitlines(), " "]
        self._batch_size = batch_size

    def read(self, image: BGRImage, boxes: Sequence[TextBox]) -> list[Reading]:
        crops = [crop_quad(image, box.quad) for box in boxes]
        order = np.argsort([c.shape[1] / c.shape[0] for c in crops])
        readings: list[Reading] = [Reading("", 0.0)] * len(crops)
        for start in range(0, len(crops), self._batch_size):
            chunk = [int(i) for i in order[start : start + self._batch_size]]
            batch = rec_batch([crops[i] for i in chunk], min_width=self._min_width)
            for i, reading in zip(chunk, self._decode(self._runner.run(batch)), strict=True):
                readings[i] = reading
        return readings

    def _decode(self, probs: npt.NDArray[np.float32]) -> Iterator[Reading]:
        best = probs.argmax(axis=2)
        conf = probs.max(axis=2)
        for idx, p in zip(best, conf, strict=True):
            keep = np.ones(len(idx), dtype=bool)
            keep[1:] = idx[1:] != idx[:-1]
            keep &= idx != 0
            text = "".join(self._characters[i] for i in idx[keep] if i < len(self._characters))
            yield Reading(text, float(p[keep].mean()) if keep.any() else 0.0)


def crop_quad(image: BGRImage, quad: Quad) -> BGRImage:
    """Warp a text quad to an upright rectangle (rotated 90 degrees when it stands tall)."""
    w = max(1, round(max(np.linalg.norm(quad[0] - quad[1]), np.linalg.norm(quad[2] - quad[3]))))
    h = max(1, round(max(np.linalg.norm(quad[0] - quad[3]), np.linalg.norm(quad[1] - quad[2]))))
    target = np.array([[0, 0], [w, 0], [w, h], [0, h]], dtype=np.float32)
    matrix = cv2.getPerspectiveTransform(quad.astype(np.float32), target)
    crop = cv2.warpPerspective(image, matrix, (w, h), borderMode=cv2.BORDER_REPLICATE)
    if h / w >= 1.5:
        crop = np.rot90(crop)
    return np.ascontiguousarray(crop)


def rec_batch(
    crops: Sequence[BGRImage], *, min_width: int = REC_MIN_WIDTH
) -> npt.NDArray[np.float32]:
    """The recogniser's 48 px high batch, each crop resized to keep its aspect ratio and
    left-aligned. At PaddleOCR's `min_width` (320, the personal-text OCR) exactly its rule: 320
    or the widest crop's width. Narrower (plates): as wide as the widest crop, rounded up to a
    multiple of `_REC_WIDTH_STEP`, and at least `min_width`."""
    ratios = [c.shape[1] / c.shape[0] for c in crops]
    widest = _REC_HEIGHT * max(ratios)
    if min_width >= REC_MIN_WIDTH:
        width = max(min_width, int(widest))
    else:
        width = max(min_width, math.ceil(math.ceil(widest) / _REC_WIDTH_STEP) * _REC_WIDTH_STEP)
    batch = np.zeros((len(crops), 3, _REC_HEIGHT, width), dtype=np.float32)
    for i, (crop, ratio) in enumerate(zip(crops, ratios, strict=True)):
        rw = min(width, math.ceil(_REC_HEIGHT * ratio))
        resized = cv2.resize(crop, (rw, _REC_HEIGHT)).astype(np.float32)
        batch[i, :, :, :rw] = (resized * (2.0 / 255.0) - 1.0).transpose(2, 0, 1)
    return batch
