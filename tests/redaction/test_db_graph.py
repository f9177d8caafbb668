"""The exact rewrite of the text detector's graph (db_graph.py) finds the same boxes with the same
scores as the file run unchanged: on rendered plates at both pass scales and on two repo dashcam
frames at the far pass's 2x."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from redaction.detectors.db_graph import head_as_pointwise, rewrite_db_graph
from redaction.detectors.ocr import (
    DET_MODEL_FILE,
    REC_MODEL_FILE,
    TextDetectorModel,
    packaged_model_path,
)
from redaction.detectors.runtime import OpenVinoRunner

REPO = Path(__file__).resolve().parents[2]
DASHCAM = [
    REPO / "gateway" / "demo_photos" / "dashcam_dayride_type1_001_t1055.jpg",
    REPO / "gateway" / "demo_photos" / "dashcam_nightride_type3_001_t386.jpg",
]


def _conv_transpose_2x2(x: np.ndarray, w: np.ndarray, b: np.ndarray) -> np.ndarray:
    """ConvTranspose, kernel 2, stride 2, no padding: x (C_in, H, W), w (C_in, C, 2, 2)."""
    _, h, wd = x.shape
    out = np.zeros((w.shape[1], 2 * h, 2 * wd), np.float64)
    for dy in range(2):
        for dx in range(2):
            out[:, dy::2, dx::2] = np.einsum("ihw,io->ohw", x, w[:, :, dy, dx])
    return out + b.reshape(-1, 1, 1)


def test_head_as_pointwise_equals_the_transposed_convolutions() -> None:
    rng = np.random.default_rng(3)
    c, h, w = 5, 3, 4
    x = rng.normal(size=(c, h, w)).astype(np.float32)
    w0 = rng.normal(size=(c, c, 2, 2)).astype(np.float32)
    b0, beta, mean = (rng.normal(size=c).astype(np.float32) for _ in range(3))
    gamma, var = (rng.uniform(0.5, 2, size=c).astype(np.float32) for _ in range(2))
    w2 = rng.normal(size=(c, 1, 2, 2)).astype(np.float32)
    eps = 1e-5
    # the original head: ConvT + bias, BatchNorm, ReLU, ConvT (bias left out: a constant)
    mid = _conv_transpose_2x2(x, w0, b0)
    mid = (mid - mean[:, None, None]) / np.sqrt(var[:, None, None] + eps)
    mid = np.maximum(mid * gamma[:, None, None] + beta[:, None, None], 0)
    expected = _conv_transpose_2x2(mid, w2, np.zeros(1))[0]
    k1, bias1, k2 = head_as_pointwise(w0, b0, gamma, beta, mean, var, eps, w2)
    y = np.maximum(np.einsum("oi,ihw->ohw", k1[:, :, 0, 0], x) + bias1[:, None, None], 0)
    y = np.einsum("oi,ihw->ohw", k2[:, :, 0, 0], y)  # 16 x h x w
    got = y.reshape(4, 4, h, w).transpose(2, 0, 3, 1).reshape(4 * h, 4 * w)  # DepthToSpace(4)
    assert np.abs(got - expected).max() < 1e-4


def _plates_scene(seed: int) -> np.ndarray:
    """A grey street-like frame with plate-like strings from 9 to 60 px high, some darkened."""
    rng = np.random.default_rng(seed)
    img = cv2.GaussianBlur(rng.integers(40, 200, (360, 640, 3), dtype=np.uint8), (9, 9), 0)
    places = [(30, 60, 0.35), (300, 40, 0.6), (60, 200, 1.0), (330, 260, 1.8)]
    texts = ["B GS 21", "KA 4711", "M XY 305", "HH 12 AB"]
    for text, (x, y, size) in zip(texts, places, strict=True):
        (tw, th), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, size, 2)
        cv2.rectangle(img, (x - 4, y - th - 6), (x + tw + 4, y + 6), (235, 235, 235), -1)
        cv2.putText(img, text, (x, y), cv2.FONT_HERSHEY_SIMPLEX, size, (15, 15, 15), 2)
    if seed % 2:
        img = (img * 0.45).astype(np.uint8)  # night
    return img


@pytest.fixture(scope="module")
def detectors() -> tuple[TextDetectorModel, TextDetectorModel]:
    exact = TextDetectorModel(runtime="openvino", box_threshold=0.3)
    plain = TextDetectorModel(runtime="openvino", box_threshold=0.3, exact_graph=False)
    assert exact._runner.logits and not plain._runner.logits
    return exact, plain


@pytest.mark.integration
def test_rewritten_graph_finds_the_same_boxes(
    detectors: tuple[TextDetectorModel, TextDetectorModel],
) -> None:
    exact, plain = detectors
    found = 0
    for seed in (1, 2):
        image = _plates_scene(seed)
        for scale in (1.0, 2.0):
            expected, got = plain.detect(image, scale=scale), exact.detect(image, scale=scale)
            assert [b.bbox() for b in got] == [b.bbox() for b in expected]
            assert all(abs(a.score - b.score) < 1e-4 for a, b in zip(got, expected, strict=True))
            found += len(got)
            prob_plain = plain.probability_map(image, scale=scale)
            prob_exact = exact.probability_map(image, scale=scale)
            assert prob_exact.shape == prob_plain.shape
            assert np.abs(prob_exact - prob_plain).max() < 1e-4
    assert found >= 8  # the scenes' plates are seen: not a comparison of empty maps


@pytest.mark.integration
def test_rewritten_graph_gives_the_same_far_pass_on_dashcam_frames(
    detectors: tuple[TextDetectorModel, TextDetectorModel],
) -> None:
    """The 2x far pass over two real 1280x720 frames (day and night): same text boxes."""
    exact, plain = detectors
    for path in DASHCAM:
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        expected, got = plain.detect(image, scale=2.0), exact.detect(image, scale=2.0)
        assert len(expected) >= 3, path.name
        assert [b.bbox() for b in got] == [b.bbox() for b in expected]
        assert all(abs(a.score - b.score) < 1e-4 for a, b in zip(got, expected, strict=True))


def test_other_graphs_are_left_alone() -> None:
    """A model without PP-OCR's DB head is not rewritten: the runner keeps probabilities."""
    import openvino as ov

    model = ov.Core().read_model(str(packaged_model_path(REC_MODEL_FILE)))
    assert rewrite_db_graph(model) is False
    det = OpenVinoRunner(packaged_model_path(DET_MODEL_FILE), threads=1, rewrite=rewrite_db_graph)
    assert det.logits is True
