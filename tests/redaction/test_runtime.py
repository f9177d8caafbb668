"""Inference runtimes: OpenVINO and onnxruntime give the same text map, and a missing or
unknown runtime is refused loudly instead of being swapped silently."""

from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from redaction.detectors._onnx import onnx_metadata
from redaction.detectors.ocr import (
    DET_MODEL_FILE,
    REC_MODEL_FILE,
    TextDetectorModel,
    TextRecognizerModel,
    detector_blob,
    packaged_model_path,
)
from redaction.detectors.runtime import OpenVinoRunner, OrtRunner, load_runner
from redaction.errors import DetectorFailed


def _sign(shape: tuple[int, int]) -> np.ndarray:
    rng = np.random.default_rng(7)
    img = cv2.GaussianBlur(rng.integers(80, 150, (*shape, 3), dtype=np.uint8), (5, 5), 0)
    cv2.rectangle(img, (40, 60), (300, 110), (240, 240, 240), -1)
    cv2.putText(img, "KA 4711 B", (50, 100), cv2.FONT_HERSHEY_SIMPLEX, 1.2, (20, 20, 20), 2)
    return img


@pytest.mark.integration
def test_openvino_matches_onnxruntime_on_the_text_detector() -> None:
    path = packaged_model_path(DET_MODEL_FILE)
    ort_runner = load_runner(path, threads=1, runtime="onnxruntime")
    ov_runner = load_runner(path, threads=1, runtime="openvino")
    assert isinstance(ort_runner, OrtRunner) and isinstance(ov_runner, OpenVinoRunner)
    for shape in [(192, 352), (224, 320)]:  # a second shape: dynamic input sizes work
        blob = detector_blob(_sign(shape))
        expected, got = ort_runner.run(blob), ov_runner.run(blob)
        assert got.shape == expected.shape == (1, 1, *shape)
        assert float(expected.max()) > 0.9  # the text is seen: not a comparison of empty maps
        assert np.abs(got - expected).max() < 1e-3  # fp32 on both: bf16 would differ by ~1
        assert np.array_equal(got > 0.3, expected > 0.3)


@pytest.mark.integration
def test_auto_prefers_openvino_when_installed() -> None:
    runner = load_runner(packaged_model_path(DET_MODEL_FILE), threads=1, runtime="auto")
    assert runner.runtime == "openvino"


def test_missing_openvino_fails_when_named_and_falls_back_on_auto(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setitem(sys.modules, "openvino", None)  # makes `import openvino` fail
    path = packaged_model_path(DET_MODEL_FILE)
    with pytest.raises(DetectorFailed, match="not installed"):
        load_runner(path, threads=1, runtime="openvino")
    with pytest.raises(DetectorFailed, match="not installed"):
        load_runner(path, threads=1, runtime="openvino-bf16")
    runner = load_runner(path, threads=1, runtime="auto")
    assert runner.runtime == "onnxruntime"
    assert "runs on onnxruntime" in caplog.text


def test_unknown_runtime_and_bad_model_raise(tmp_path: Path) -> None:
    with pytest.raises(DetectorFailed, match="unknown inference runtime"):
        load_runner(packaged_model_path(DET_MODEL_FILE), threads=1, runtime="tensorrt")  # type: ignore[arg-type]
    bad = tmp_path / "broken.onnx"
    bad.write_bytes(b"not a model")
    for runtime in ("onnxruntime", "openvino"):
        with pytest.raises(DetectorFailed, match="cannot load"):
            load_runner(bad, threads=1, runtime=runtime)  # type: ignore[arg-type]


@pytest.mark.integration
def test_text_detector_maps_agree_across_runtimes() -> None:
    """The OpenVINO detector takes uint8 pixels and normalises inside the graph; onnxruntime
    gets the float blob: the probability maps and the boxes must agree."""
    image = _sign((200, 330))
    on_ort = TextDetectorModel(runtime="onnxruntime")
    on_ov = TextDetectorModel(runtime="openvino")
    assert (on_ort.runtime, on_ov.runtime) == ("onnxruntime", "openvino")
    for scale in (1.0, 2.0):
        expected = on_ort.probability_map(image, scale=scale)
        got = on_ov.probability_map(image, scale=scale)
        assert got.shape == expected.shape and float(expected.max()) > 0.9
        assert np.abs(got - expected).max() < 1e-3
    boxes_ort, boxes_ov = on_ort.detect(image, scale=2.0), on_ov.detect(image, scale=2.0)
    assert boxes_ort and [b.bbox() for b in boxes_ov] == [b.bbox() for b in boxes_ort]


@pytest.mark.integration
def test_recogniser_reads_the_same_on_both_runtimes() -> None:
    image = _sign((200, 330))
    boxes = TextDetectorModel(runtime="onnxruntime").detect(image)
    assert boxes
    read_ort = TextRecognizerModel(runtime="onnxruntime").read(image, boxes)
    read_ov = TextRecognizerModel(runtime="openvino").read(image, boxes)
    assert any("4711" in r.text for r in read_ort)
    assert [r.text for r in read_ov] == [r.text for r in read_ort]
    assert all(abs(a.score - b.score) < 1e-3 for a, b in zip(read_ov, read_ort, strict=True))


def test_onnx_metadata_reads_the_character_list() -> None:
    meta = onnx_metadata(packaged_model_path(REC_MODEL_FILE).read_bytes())
    characters = meta["character"].splitlines()
    assert len(characters) > 6000 and "A" in characters and "7" in characters
    assert onnx_metadata(packaged_model_path(DET_MODEL_FILE).read_bytes()).get("character") is None


def test_openvino_never_pins_its_threads_to_cores() -> None:
    """OpenVINO pins its inference threads to cores by default on Linux: two worker processes
    on one host then both ran on the first core (bench/scale.py, 2 workers: 1.2 of 2 cores
    busy, each redaction call twice as long). The runner turns pinning off."""
    runner = OpenVinoRunner(packaged_model_path(DET_MODEL_FILE), threads=1)
    assert runner._compiled.get_property("ENABLE_CPU_PINNING") is False
