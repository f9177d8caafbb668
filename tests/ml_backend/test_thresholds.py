"""Each source's default score threshold is the one bench/prelabel_thresholds.py adopted
(chosen on the development photos, kept where the held-out ones were not worse:
bench/results/prelabel-thresholds-choice.json); a source's threshold applies
to its own detections, also when two sources share a class."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ml_backend.calibration import CalibrationStore
from ml_backend.detections import Detection
from ml_backend.images import RedactedImage
from ml_backend.mapping import LabelMapping
from ml_backend.service import PreLabeller
from ml_backend.settings import MLBackendSettings
from ml_backend.sources.base import SourceSet
from ml_backend.sources.nanodet import PersonSource, VehicleSource

CHOICE = Path(__file__).resolve().parents[2] / "bench/results/prelabel-thresholds-choice.json"

CONFIG = """
<View>
  <Image name="image" value="$image"/>
  <RectangleLabels name="box" toName="image"><Label value="Person"/></RectangleLabels>
</View>"""


@dataclass
class FakeSource:
    name: str
    classes: tuple[str, ...]
    default_threshold: float
    found: tuple[Detection, ...] = ()
    model_id: str = "fake"

    def detect(self, image: object) -> list[Detection]:  # noqa: ARG002 (fixed findings)
        return list(self.found)


class OneImage:
    def fetch(self, task_data: Mapping[str, Any]) -> RedactedImage:  # noqa: ARG002 (one image)
        return RedactedImage("a", "d", "0" * 64, np.zeros((100, 100, 3), np.uint8))

    def record(self, image: RedactedImage, **kwargs: Any) -> None:
        pass

    def close(self) -> None:
        pass


def test_a_source_threshold_applies_to_its_own_detections_of_a_shared_class(
    tmp_path: Path,
) -> None:
    # persons first, then an admin's ONNX model that also has `person`, its threshold set by
    # GATEWAY_ML_ONNX_THRESHOLD=0.25: its persons at 0.3 are kept, the persons source's are not
    persons = FakeSource("persons", ("person",), 0.42,
                         (Detection("person", 0, 0, 20, 40, 0.3, "persons"),))  # fmt: skip
    onnx = FakeSource("onnx", ("person",), 0.25,
                      (Detection("person", 50, 50, 20, 40, 0.3, "onnx"),))  # fmt: skip
    labeller = PreLabeller(SourceSet((persons, onnx)), OneImage(), LabelMapping({}),
                           CalibrationStore(tmp_path), budget_seconds=10)  # fmt: skip
    (prediction,) = labeller.predict([{"id": 1, "data": {}}], project=None, label_config=CONFIG,
                                     context=None)[0]  # fmt: skip
    assert [r["value"]["x"] for r in prediction["result"]] == [50.0]
    sources = SourceSet((persons, onnx))
    assert sources.threshold_of(Detection("person", 0, 0, 9, 9, 0.3, "onnx")) == 0.25
    assert sources.threshold_of(Detection("person", 0, 0, 9, 9, 0.3, "")) == 0.42  # by class
    assert sources.threshold_of(Detection("cat", 0, 0, 9, 9, 0.3, "")) == 0.5


def test_the_defaults_are_what_the_bench_adopted() -> None:
    chosen = json.loads(CHOICE.read_text())["adopted"]
    assert PersonSource.default_threshold == chosen["persons"]
    assert VehicleSource.default_threshold == chosen["vehicles"]


def test_an_admin_override_wins_and_is_a_new_model_version() -> None:
    default = SourceSet((PersonSource(MLBackendSettings()), VehicleSource(MLBackendSettings())))
    settings = MLBackendSettings(persons_threshold=0.5, vehicles_threshold=0.4)
    person, vehicle = PersonSource(settings), VehicleSource(settings)
    assert (person.default_threshold, vehicle.default_threshold) == (0.5, 0.4)
    assert PersonSource.default_threshold == json.loads(CHOICE.read_text())["chosen"]["persons"]
    overridden = SourceSet((person, vehicle))
    assert overridden.threshold_of(Detection("car", 0, 0, 9, 9, 0.3, "vehicles")) == 0.4
    assert overridden.version() != default.version()
