"""People by OpenCV's built-in HOG + linear SVM pedestrian detector (Dalal-Triggs, in cv2).

No permissively licensed neural people detector ships inside a PyPI package we could find
(the YOLO packages are AGPL and download weights at run time); an admin who has one points the
ONNX source at it. HOG finds upright, whole people of at least 64x128 px; its SVM margin is
mapped to a score with 1 - exp(-margin).
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from ml_backend.detections import Detection
from ml_backend.settings import MLBackendSettings
from redaction.types import BGRImage

_MAX_SIDE = 1280
_NMS_IOU = 0.45


class HogPeopleSource:
    name = "people"
    classes: tuple[str, ...] = ("person",)
    default_threshold = 0.5

    def __init__(self, settings: MLBackendSettings) -> None:
        del settings  # HOG has no model file and no thread setting
        self._hog = cv2.HOGDescriptor()
        detector = np.asarray(cv2.HOGDescriptor.getDefaultPeopleDetector(), dtype=np.float32)
        self._hog.setSVMDetector(detector)
        self.model_id = f"opencv-hog-people:{cv2.__version__}"

    def detect(self, image: BGRImage) -> list[Detection]:
        h, w = image.shape[:2]
        scale = min(1.0, _MAX_SIDE / max(h, w))
        small = image if scale == 1.0 else cv2.resize(image, (round(w * scale), round(h * scale)))
        if small.shape[0] < 128 or small.shape[1] < 64:
            return []
        rects, weights = self._hog.detectMultiScale(
            small, winStride=(8, 8), padding=(8, 8), scale=1.05, hitThreshold=0.0
        )
        if len(rects) == 0:
            return []
        scores = [1.0 - math.exp(-max(0.0, float(m))) for m in np.asarray(weights).ravel()]
        boxes = [[int(v) for v in r] for r in rects]
        keep = cv2.dnn.NMSBoxes(boxes, scores, 0.05, _NMS_IOU)
        found = []
        for i in np.asarray(keep).ravel():
            x, y, bw, bh = (v / scale for v in boxes[int(i)])
            x0, y0 = max(0.0, x), max(0.0, y)
            x1, y1 = min(float(w), x + bw), min(float(h), y + bh)
            found.append(Detection("person", x0, y0, x1 - x0, y1 - y0, scores[int(i)], self.name))
        return found
