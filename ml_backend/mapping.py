"""Model classes -> project label names, through a configurable mapping.

A model class (`person`, `car`, `truck`, `bus`, `motorcycle`, `bicycle`, `face`, `plate`,
`text`, or any class of an admin's ONNX model) maps to a
project label when, case-insensitively:
1. the label's own `predicted_values` attribute names the class, or
2. the mapping (built-in synonyms, extended or overridden by the admin's file) lists the label
   name for that class, or
3. the label is the class name itself.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

import yaml

from ml_backend.labelconfig import ControlSpec

DEFAULT_SYNONYMS: dict[str, tuple[str, ...]] = {
    "person": ("person", "people", "pedestrian", "human", "persons"),
    "face": ("face", "faces", "head", "blurred face", "redacted face"),
    "plate": ("plate", "licence plate", "license plate", "number plate", "car plate"),
    "text": ("text", "text region", "text line", "sign"),
    "car": ("car", "cars", "vehicle", "vehicles", "automobile"),
    "truck": ("truck", "lorry", "van", "vehicle", "vehicles"),
    "bus": ("bus", "vehicle", "vehicles"),
    "motorcycle": ("motorcycle", "motorbike", "vehicle", "vehicles"),
    "bicycle": ("bicycle", "bike", "cycle", "vehicle", "vehicles"),
}


class MappingError(ValueError):
    """The admin's mapping file is unreadable or not a class -> [labels] table."""


class LabelMapping:
    def __init__(self, synonyms: Mapping[str, tuple[str, ...]]) -> None:
        self._synonyms = {
            cls.lower(): tuple(n.lower() for n in names) for cls, names in synonyms.items()
        }

    @classmethod
    def load(cls, path: Path | None) -> LabelMapping:
        """Built-in synonyms, each class replaced by the file's entry when it has one."""
        merged = dict(DEFAULT_SYNONYMS)
        if path is not None:
            merged.update(_read_mapping(path))
        return cls(merged)

    def label_for(self, control: ControlSpec, model_class: str) -> str | None:
        """The control's label for `model_class`, or None when the project has no such label."""
        wanted = model_class.lower()
        for label in control.labels:
            if wanted in (p.lower() for p in label.predicted_values):
                return label.value
        names = self._synonyms.get(wanted, (wanted,))
        for label in control.labels:
            if label.value.lower() in names or label.value.lower() == wanted:
                return label.value
        return None

    def as_dict(self) -> dict[str, list[str]]:
        return {cls: list(names) for cls, names in sorted(self._synonyms.items())}


def _read_mapping(path: Path) -> dict[str, tuple[str, ...]]:
    try:
        text = path.read_text()
        data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (OSError, ValueError, yaml.YAMLError) as exc:
        raise MappingError(f"cannot read the label mapping {path}: {exc}") from exc
    if not isinstance(data, dict):
        raise MappingError(f"{path}: expected a table of model class -> list of label names")
    out: dict[str, tuple[str, ...]] = {}
    for cls, names in data.items():
        if isinstance(names, str):
            names = [names]
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise MappingError(f"{path}: the entry for {cls!r} must be a list of label names")
        out[str(cls)] = tuple(names)
    return out
