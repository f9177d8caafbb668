"""The redaction engine's own detectors (faces, plates, text regions) as pre-label sources.

On a redacted image faces and plates are already masked: these sources find the masked
regions (useful when the project labels them) with lower scores than on originals.
"""

from __future__ import annotations

from ml_backend.detections import Detection
from ml_backend.settings import MLBackendSettings
from redaction.detectors.faces import CenterFaceDetector
from redaction.detectors.ocr import TextDetectorModel
from redaction.detectors.plates import PlateDetector
from redaction.types import BGRImage, Region


def _detection(region: Region, *, model_class: str, source: str) -> Detection:
    return Detection(
        model_class, region.x, region.y, region.w, region.h, float(region.score), source
    )


class FaceSource:
    name = "faces"
    classes: tuple[str, ...] = ("face",)
    default_threshold = 0.4

    def __init__(self, settings: MLBackendSettings) -> None:
        self._detector = CenterFaceDetector(threshold=0.1, threads=settings.threads)
        self.model_id = f"centerface:{self._detector.model.sha256[:12]}"

    def detect(self, image: BGRImage) -> list[Detection]:
        return [
            _detection(r, model_class="face", source=self.name)
            for r in self._detector.detect(image)
        ]


class PlateSource:
    name = "plates"
    classes: tuple[str, ...] = ("plate",)
    default_threshold = 0.5

    def __init__(self, settings: MLBackendSettings) -> None:
        self._detector = PlateDetector(threshold=0.3, threads=settings.threads)
        self.model_id = "pp-ocrv4-plates:" + ",".join(m.sha256[:12] for m in self._detector.models)

    def detect(self, image: BGRImage) -> list[Detection]:
        return [
            _detection(r, model_class="plate", source=self.name)
            for r in self._detector.detect(image)
        ]


class TextSource:
    """Text lines as rotated quads (polygons when the project has PolygonLabels)."""

    name = "text"
    classes: tuple[str, ...] = ("text",)
    default_threshold = 0.6

    def __init__(self, settings: MLBackendSettings) -> None:
        self._model = TextDetectorModel(threads=settings.threads, box_threshold=0.4)
        self.model_id = f"pp-ocrv4-det:{self._model.info.sha256[:12]}"

    def detect(self, image: BGRImage) -> list[Detection]:
        h, w = image.shape[:2]
        scale = min(1.0, 1600 / max(h, w))
        found = []
        for box in self._model.detect(image, scale=scale):
            x, y, bw, bh = box.bbox()
            outline = tuple((float(px), float(py)) for px, py in box.quad)
            found.append(Detection("text", x, y, bw, bh, float(box.score), self.name, outline))
        return found
