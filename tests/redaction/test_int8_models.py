"""The int8 CenterFace the registry runs by default: the recorded build, refused when tampered
with, and finding the same faces as the model it was built from."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from redaction.detectors import _onnx
from redaction.detectors.faces import CenterFaceDetector
from redaction.errors import DetectorFailed
from redaction.policy import RedactionPolicy
from redaction.registry import build_detectors, clear_cache, get_detector
from tests.redaction.test_faces import (
    Photo,
    coverage,
    non_faces,
    read,
    sample_face_photo,  # noqa: F401  (fixture)
)

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def int8_centerface() -> CenterFaceDetector:
    return CenterFaceDetector(quantized=True)


def test_bundled_models_match_models_json_and_the_files() -> None:
    manifest = json.loads((ROOT / "models.json").read_text(encoding="utf-8"))["models"]
    recorded = {
        Path(m["path"]).name: m["sha256"]
        for m in manifest
        if m["package_kind"] == "repo" and m["path"].startswith("redaction/models/")
    }  # the engine's own; the ML backend's detectors are checked in tests/ml_backend
    assert recorded == _onnx.BUNDLED_MODELS
    for name, digest in recorded.items():
        data = (ROOT / "redaction" / "models" / name).read_bytes()
        assert hashlib.sha256(data).hexdigest() == digest


def test_a_bundled_model_that_differs_from_its_digest_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(_onnx.BUNDLED_MODELS, "centerface-int8.onnx", "0" * 64)
    clear_cache()
    try:
        with pytest.raises(DetectorFailed, match="digest"):
            get_detector("centerface", policy=RedactionPolicy())
    finally:
        clear_cache()
    with pytest.raises(DetectorFailed):
        _onnx.bundled_model("not-a-model.onnx")


@pytest.mark.integration
def test_registry_defaults_to_int8_centerface_and_the_original_retinaface() -> None:
    detectors = build_detectors(RedactionPolicy())
    assert detectors.faces is not None and detectors.leak_faces is not None
    assert detectors.faces.model.file == "redaction/models/centerface-int8.onnx"
    assert detectors.leak_faces.model.file == "retinaface/weights.py:WEIGHTS"
    fp32 = get_detector("centerface-fp32", policy=RedactionPolicy())
    assert fp32.model.file == "redaction/models/centerface.onnx"


@pytest.mark.integration
def test_int8_centerface_finds_the_photo_faces_fp32_finds(
    sample_face_photo: Photo,  # noqa: F811
    int8_centerface: CenterFaceDetector,
) -> None:
    path, truth = sample_face_photo
    image = read(path)
    fp32 = CenterFaceDetector().detect(image)
    int8 = int8_centerface.detect(image)
    faces = [b for b in truth if min(b["w"], b["h"]) >= 20]
    by_fp32 = sum(coverage(fp32, b, margin=0.3, size=image.shape) >= 0.9 for b in faces)
    by_int8 = sum(coverage(int8, b, margin=0.3, size=image.shape) >= 0.9 for b in faces)
    assert by_int8 >= by_fp32 - max(1, len(faces) // 10)


@pytest.mark.integration
def test_int8_centerface_stays_quiet_on_non_faces(int8_centerface: CenterFaceDetector) -> None:
    for name, plain in non_faces().items():
        assert len(int8_centerface.detect(plain)) <= 1, name
    assert int8_centerface.detect(np.full((7, 5, 3), 128, np.uint8)) == []
