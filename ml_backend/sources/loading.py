"""Load the pre-label sources a backend's settings name: the explicit registry of source
implementations (importing it loads the model runtimes; the protocol is `sources.base`)."""

from __future__ import annotations

import logging

from ml_backend.settings import MLBackendSettings
from ml_backend.sources.base import PreLabelSource, SourceFactory, SourceSet, SourceUnavailable
from ml_backend.sources.nanodet import PersonSource, VehicleSource
from ml_backend.sources.onnx_yolo import onnx_source
from ml_backend.sources.redaction_models import FaceSource, PlateSource, TextSource

log = logging.getLogger(__name__)


def load_sources(settings: MLBackendSettings) -> SourceSet:
    """Load every source `settings.sources` names, once. A missing optional model is logged and
    skipped (never downloaded); a packaged model that fails to load is an error."""
    factories: dict[str, SourceFactory] = {
        "faces": FaceSource,
        "plates": PlateSource,
        "text": TextSource,
        "persons": PersonSource,
        "vehicles": VehicleSource,
        "onnx": onnx_source,
    }
    loaded: list[PreLabelSource] = []
    unavailable: dict[str, str] = {}
    for name in settings.sources:
        try:
            loaded.append(factories[name](settings))
        except SourceUnavailable as exc:
            log.warning("pre-label source %s is unavailable: %s", name, exc)
            unavailable[name] = str(exc)
    return SourceSet(tuple(loaded), unavailable)
