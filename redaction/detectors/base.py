"""The detector plug-in protocol: one method, explicit registry, named model files."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from redaction.types import BGRImage, Region


@dataclass(frozen=True, slots=True)
class ModelInfo:
    """What an auditor needs to know about a model file: where it came from and its licence."""

    name: str
    file: str
    """Path of the model file inside its package, e.g. `redaction/models/centerface.onnx`."""
    package: str
    package_version: str
    sha256: str
    licence: str


class Detector(Protocol):
    """Finds regions to redact. Must not mutate the image; raises on failure (never returns []
    to mean 'I could not look')."""

    name: str
    model: ModelInfo

    def detect(self, image: BGRImage) -> list[Region]: ...
