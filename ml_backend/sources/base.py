"""The pre-label source protocol and the set of sources a backend loaded at start (the sources
themselves are loaded by `ml_backend.sources.loading`, which imports their implementations)."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from ml_backend.detections import Detection
from ml_backend.settings import MLBackendSettings
from redaction.types import BGRImage

log = logging.getLogger(__name__)


class SourceUnavailable(Exception):
    """An optional model is not configured or not on disk: the source gives no predictions."""


class ModelMismatch(RuntimeError):
    """The packaged model file is not the one recorded: it is refused, never run."""


class PreLabelSource(Protocol):
    """Finds objects in a (redacted) image. Returns candidates down to `floor`; the backend
    applies each class's threshold. Must not mutate the image."""

    name: str
    model_id: str
    """Model file and digest prefix, e.g. `centerface:3f2a...`: part of the model version."""
    classes: tuple[str, ...]
    default_threshold: float

    def detect(self, image: BGRImage) -> list[Detection]: ...


SourceFactory = Callable[[MLBackendSettings], PreLabelSource]


@dataclass
class SourceSet:
    """The sources loaded at start, and why the others are not there."""

    sources: tuple[PreLabelSource, ...] = ()
    unavailable: dict[str, str] = field(default_factory=dict)

    def version(self) -> str:
        """Models and thresholds: a changed default (or override) is a new model version, so
        Label Studio predicts again instead of keeping what the old threshold kept."""
        ids = "|".join(sorted(f"{s.model_id}@{round(s.default_threshold * 1000)}"
                              for s in self.sources))  # fmt: skip
        return hashlib.sha256(ids.encode()).hexdigest()[:10]

    def threshold_of(self, detection: Detection) -> float:
        """The threshold of the source that found it (two sources may share a class: an ONNX
        model's persons keep GATEWAY_ML_ONNX_THRESHOLD); by class when no source is named."""
        for s in self.sources:
            if s.name == detection.source:
                return s.default_threshold
        return self.threshold_for(detection.model_class)

    def threshold_for(self, model_class: str) -> float:
        """The first source with this class; 0.5 when none has it."""
        for s in self.sources:
            if model_class in s.classes:
                return s.default_threshold
        return 0.5

    def describe(self) -> dict[str, str]:
        found = {s.name: s.model_id for s in self.sources}
        return found | {name: f"unavailable: {why}" for name, why in self.unavailable.items()}
