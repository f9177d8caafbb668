"""Any YOLO-style ONNX detection model the admin points to, with its class names file.

Accepted outputs (batch 1): YOLOv5-style rows `cx, cy, w, h, objectness, class scores...` or
YOLOv8-style rows `cx, cy, w, h, class scores...`, either as (N, K) or transposed (K, N), boxes
in the letterboxed input's pixels. A model that is not configured or not on disk gives no
predictions (it is never downloaded).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt
import onnxruntime as ort

from ml_backend.detections import Detection
from ml_backend.settings import MLBackendSettings
from ml_backend.sources.base import SourceUnavailable
from redaction.types import BGRImage

FloatArray = npt.NDArray[np.float32]
_FLOOR = 0.05
_NMS_IOU = 0.45
_DEFAULT_SIDE = 640


class OnnxModelError(RuntimeError):
    """The model ran but its output is not a YOLO-style detection table."""


def read_class_names(path: Path) -> tuple[str, ...]:
    """One class name per line, or a JSON list."""
    text = path.read_text()
    if text.lstrip().startswith("["):
        names = json.loads(text)
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise ValueError(f"{path}: expected a JSON list of class names")
        return tuple(n.strip() for n in names)
    return tuple(line.strip() for line in text.splitlines() if line.strip())


def onnx_source(settings: MLBackendSettings) -> OnnxYoloSource:
    model, classes = settings.onnx_model, settings.onnx_classes
    if model is None or classes is None:
        raise SourceUnavailable("no ONNX model configured (GATEWAY_ML_ONNX_MODEL/_CLASSES)")
    if not model.is_file():
        raise SourceUnavailable(f"ONNX model file {model} does not exist")
    if not classes.is_file():
        raise SourceUnavailable(f"class names file {classes} does not exist")
    try:
        return OnnxYoloSource(
            model,
            read_class_names(classes),
            threshold=settings.onnx_threshold,
            threads=settings.threads,
        )
    except (OSError, ValueError, OnnxModelError) as exc:
        raise SourceUnavailable(f"ONNX model {model} cannot be used: {exc}") from exc


class OnnxYoloSource:
    name = "onnx"

    def __init__(
        self, model: Path, classes: tuple[str, ...], *, threshold: float, threads: int = 1
    ) -> None:
        if not classes:
            raise ValueError("the class names file is empty")
        data = model.read_bytes()
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.log_severity_level = 3
        try:
            self._session = ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises bare Fail/InvalidGraph subclasses
            raise OnnxModelError(f"onnxruntime cannot load it: {exc}") from exc
        self.classes = classes
        self.default_threshold = threshold
        self.model_id = f"onnx:{model.name}:{hashlib.sha256(data).hexdigest()[:12]}"
        shape = self._session.get_inputs()[0].shape
        if len(shape) != 4:
            raise OnnxModelError(f"expected an NCHW image input, got shape {shape}")
        self._side_h = shape[2] if isinstance(shape[2], int) else _DEFAULT_SIDE
        self._side_w = shape[3] if isinstance(shape[3], int) else _DEFAULT_SIDE

    def detect(self, image: BGRImage) -> list[Detection]:
        blob, ratio, pad = letterbox(image, height=self._side_h, width=self._side_w)
        name = self._session.get_inputs()[0].name
        raw = np.asarray(self._session.run(None, {name: blob})[0], dtype=np.float32)
        boxes, scores, class_ids = decode_yolo(raw, num_classes=len(self.classes))
        if len(scores) == 0:
            return []
        boxes[:, 0] = (boxes[:, 0] - pad[0]) / ratio
        boxes[:, 1] = (boxes[:, 1] - pad[1]) / ratio
        boxes[:, 2:] /= ratio
        keep = cv2.dnn.NMSBoxesBatched(
            boxes.tolist(), scores.tolist(), class_ids.tolist(), _FLOOR, _NMS_IOU
        )
        h, w = image.shape[:2]
        found = []
        for i in np.asarray(keep, dtype=int).ravel():
            x0, y0 = max(0.0, float(boxes[i, 0])), max(0.0, float(boxes[i, 1]))
            x1 = min(float(w), float(boxes[i, 0] + boxes[i, 2]))
            y1 = min(float(h), float(boxes[i, 1] + boxes[i, 3]))
            if x1 > x0 and y1 > y0:
                cls = self.classes[int(class_ids[i])]
                found.append(Detection(cls, x0, y0, x1 - x0, y1 - y0, float(scores[i]), self.name))
        return found


def letterbox(
    image: BGRImage, *, height: int, width: int
) -> tuple[FloatArray, float, tuple[float, float]]:
    """Resize keeping the aspect ratio, pad with grey: NCHW RGB float32 in [0, 1]."""
    h, w = image.shape[:2]
    ratio = min(height / h, width / w)
    nh, nw = max(1, round(h * ratio)), max(1, round(w * ratio))
    canvas = np.full((height, width, 3), 114, dtype=np.uint8)
    top, left = (height - nh) // 2, (width - nw) // 2
    canvas[top : top + nh, left : left + nw] = cv2.resize(image, (nw, nh))
    rgb = canvas[:, :, ::-1].astype(np.float32) / 255.0
    return np.ascontiguousarray(rgb.transpose(2, 0, 1)[None]), ratio, (float(left), float(top))


def decode_yolo(
    raw: FloatArray, *, num_classes: int
) -> tuple[FloatArray, FloatArray, npt.NDArray[np.int64]]:
    """Rows of (x, y, w, h) top-left boxes, scores and class ids above the floor."""
    table = raw[0] if raw.ndim == 3 else raw
    if table.ndim != 2:
        raise OnnxModelError(f"expected a 2-D detection table, got shape {raw.shape}")
    widths = (4 + num_classes, 5 + num_classes)
    if table.shape[1] not in widths and table.shape[0] in widths:
        table = table.T
    if table.shape[1] == 5 + num_classes:
        class_scores = table[:, 5:] * table[:, 4:5]
    elif table.shape[1] == 4 + num_classes:
        class_scores = table[:, 4:]
    else:
        raise OnnxModelError(
            f"output shape {raw.shape} does not fit {num_classes} classes in YOLO layout"
        )
    class_ids = class_scores.argmax(axis=1)
    scores = class_scores[np.arange(len(table)), class_ids]
    keep = scores >= _FLOOR
    cx, cy, bw, bh = (table[keep, i] for i in range(4))
    boxes = np.stack([cx - bw / 2, cy - bh / 2, bw, bh], axis=1).astype(np.float32)
    return boxes, scores[keep].astype(np.float32), class_ids[keep].astype(np.int64)
