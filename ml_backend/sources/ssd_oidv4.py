"""Vehicles at night: SSD-MobileNetV2 trained on Open Images v4 (24 classes), from MediaPipe.

The model is `object_detection_ssd_mobilenetv2_oidv4_fp16.tflite` (Apache-2.0), packed in the
npm package `@mediapipe/objectron` 0.4.1675468480 after a 184-byte label list, converted once
to ONNX by `bench/convert_prelabel_models.py` (parity with the TFLite runtime in
`tests/ml_backend/test_nanodet_parity.py`). Input: 300x300 RGB in [-1, 1], NHWC. Output: 1917
box encodings (ty, tx, th, tw against SSD anchors, scales 10/10/5/5) and 24 class logits.

NanoDet-m (COCO) misses most cars in night dashcam frames (tail lights and glare); this model
was trained on Open Images, which has many night street photos, and finds them. Its `Car` and
`Vehicle` classes both become `car` (the label mapping's vehicle class); its other classes are
not used (persons come from NanoDet, which is better on crowds).
"""

from __future__ import annotations

import math

import cv2
import numpy as np
import numpy.typing as npt

from ml_backend.detections import Detection
from ml_backend.sources.packaged import packaged_session
from redaction.types import BGRImage

FloatArray = npt.NDArray[np.float32]
MODEL_FILE = "ssd-mobilenetv2-oidv4.onnx"
MODEL_SHA256 = "bfc33326315b1418f445b8b488e2bf14156ef093601fa90e3b2abd4f578b9165"
SIDE = 300
LABELS = (
    "???", "Bicycle", "Boot", "Laptop", "Person", "Chair", "Cattle", "Desk", "Cat",
    "Computer mouse", "Computer monitor", "Box", "Mug", "Coffee cup", "Stationary bicycle",
    "Table", "Bottle", "High heels", "Vehicle", "Footwear", "Dog", "Book", "Camera", "Car",
)  # fmt: skip
WANTED = {LABELS.index("Car"): "car", LABELS.index("Vehicle"): "car"}
_FLOOR = 0.2
_NMS_IOU = 0.5
_WHOLE_FRAME = 0.9
"""A box this wide and this tall (share of the image) is the scene, not a car: the `Vehicle`
class fires on whole street frames (seen on a labelled night frame; dropped by this rule)."""


def ssd_anchors() -> FloatArray:
    """MediaPipe's SsdAnchorsCalculator with the standard SSD-MobileNet settings: 6 layers,
    scales 0.2..0.95, strides 16..512, aspect ratios 1, 2, 1/2, 3, 1/3 plus an interpolated
    scale; 3 boxes in the lowest layer. Rows of (cx, cy, w, h), normalised."""
    num_layers, min_scale, max_scale = 6, 0.2, 0.95
    strides = (16, 32, 64, 128, 256, 512)
    ratios = (1.0, 2.0, 0.5, 3.0, 1.0 / 3.0)

    def scale(i: int) -> float:
        return min_scale + (max_scale - min_scale) * i / (num_layers - 1)

    anchors = []
    for layer, stride in enumerate(strides):
        if layer == 0:
            sizes = [(0.1, 1.0), (scale(0), 2.0), (scale(0), 0.5)]
        else:
            sizes = [(scale(layer), r) for r in ratios]
            following = 1.0 if layer == num_layers - 1 else scale(layer + 1)
            sizes.append((math.sqrt(scale(layer) * following), 1.0))
        fm = math.ceil(SIDE / stride)
        for y in range(fm):
            for x in range(fm):
                for s, r in sizes:
                    cx, cy = (x + 0.5) / fm, (y + 0.5) / fm
                    anchors.append((cx, cy, s * math.sqrt(r), s / math.sqrt(r)))
    return np.asarray(anchors, dtype=np.float32)


class SsdOidv4Model:
    def __init__(self, *, threads: int = 1) -> None:
        self._session, digest = packaged_session(MODEL_FILE, MODEL_SHA256, threads=threads)
        self._input = self._session.get_inputs()[0].name
        self._anchors = ssd_anchors()
        self.model_id = f"ssd-oidv4:{digest[:12]}"

    def detect(self, image: BGRImage) -> list[Detection]:
        """Cars (Open Images `Car` and `Vehicle`) over the floor, on the whole image."""
        h, w = image.shape[:2]
        rgb = cv2.cvtColor(cv2.resize(image, (SIDE, SIDE), interpolation=cv2.INTER_AREA),
                           cv2.COLOR_BGR2RGB)  # fmt: skip
        blob = (rgb.astype(np.float32) / 127.5 - 1.0)[None]
        boxes, logits = self._session.run(None, {self._input: blob})
        scores = 1.0 / (1.0 + np.exp(-np.asarray(logits[0], dtype=np.float32)))
        wanted = np.array(sorted(WANTED), dtype=np.int64)
        best = scores[:, wanted].max(axis=1)
        idx = np.flatnonzero(best >= _FLOOR)
        if len(idx) == 0:
            return []
        enc = np.asarray(boxes[0], dtype=np.float32)[idx]
        a = self._anchors[idx]
        cy = enc[:, 0] / 10.0 * a[:, 3] + a[:, 1]
        cx = enc[:, 1] / 10.0 * a[:, 2] + a[:, 0]
        bh = np.exp(enc[:, 2] / 5.0) * a[:, 3]
        bw = np.exp(enc[:, 3] / 5.0) * a[:, 2]
        xywh = np.stack([(cx - bw / 2) * w, (cy - bh / 2) * h, bw * w, bh * h], axis=1)
        keep = cv2.dnn.NMSBoxes(xywh.tolist(), best[idx].tolist(), _FLOOR, _NMS_IOU)
        found = []
        for i in np.asarray(keep, dtype=int).ravel():
            x0, y0 = max(0.0, float(xywh[i, 0])), max(0.0, float(xywh[i, 1]))
            x1 = min(float(w), float(xywh[i, 0] + xywh[i, 2]))
            y1 = min(float(h), float(xywh[i, 1] + xywh[i, 3]))
            whole = x1 - x0 >= _WHOLE_FRAME * w and y1 - y0 >= _WHOLE_FRAME * h
            if x1 - x0 >= 2 and y1 - y0 >= 2 and not whole:
                found.append(Detection("car", x0, y0, x1 - x0, y1 - y0, float(best[idx][i]), ""))
        return found
