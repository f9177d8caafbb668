"""Licence-plate detector: plate-shaped text found, text-free images left alone, failures loud."""

from __future__ import annotations

import logging
from pathlib import Path

import cv2
import numpy as np
import pytest

from redaction.detectors.ocr import (
    Reading,
    TextBox,
    crop_quad,
    detector_blob,
    order_clockwise,
)
from redaction.detectors.plates import PlateDetector, PlateShape, drop_nested, pass_scales
from redaction.errors import DetectorFailed
from redaction.types import Label


def _street(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    img = rng.integers(90, 140, size=(480, 640, 3), dtype=np.uint8)
    return cv2.GaussianBlur(img, (7, 7), 0)


def _with_plate(img: np.ndarray, text: str, x: int, y: int, scale: float) -> tuple[int, ...]:
    out = img
    (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 2)
    pad = max(4, th // 3)
    x1, y1 = x + tw + 2 * pad, y + th + base + 2 * pad
    cv2.rectangle(out, (x, y), (x1, y1), (245, 245, 245), -1)
    cv2.rectangle(out, (x, y), (x1, y1), (10, 10, 10), 1)
    cv2.putText(out, text, (x + pad, y + pad + th), cv2.FONT_HERSHEY_SIMPLEX, scale,
                (15, 15, 15), 2, cv2.LINE_AA)  # fmt: skip
    return x, y, x1 - x, y1 - y


def _box(x: float, y: float, w: float, h: float, score: float = 0.9) -> TextBox:
    quad = np.array([[x, y], [x + w, y], [x + w, y + h], [x, y + h]], dtype=np.float32)
    return TextBox(quad, score)


def _covered(found: tuple[int, int, int, int], target: tuple[int, ...], share: float) -> bool:
    fx, fy, fw, fh = found
    tx, ty, tw, th = target
    dx = min(fx + fw, tx + tw) - max(fx, tx)
    dy = min(fy + fh, ty + th) - max(fy, ty)
    return max(0, dx) * max(0, dy) >= share * tw * th


def test_plate_shape_rules() -> None:
    shape = PlateShape()
    assert shape.fits(_box(0, 0, 100, 20))
    assert not shape.fits(_box(0, 0, 20, 20))  # square: not a plate line
    assert not shape.fits(_box(0, 0, 400, 20))  # a long sentence
    assert not shape.fits(_box(0, 0, 20, 4))  # too small to be anything
    assert shape.reads_like_plate(_box(0, 0, 100, 24), "AB 123 CD")
    assert not shape.reads_like_plate(_box(0, 0, 100, 24), "OK")
    assert not shape.reads_like_plate(_box(0, 0, 300, 24), "WELCOME TO THE CITY")
    assert shape.reads_like_plate(_box(0, 0, 50, 10), "")  # too small to read: shape decides
    # a sure reading overrules shape: watermarks, lower-case words and other scripts are not plates
    assert not shape.reads_like_plate(_box(0, 0, 50, 12), "alamy", 0.99)
    assert not shape.reads_like_plate(_box(0, 0, 90, 12), "厚度可选买二送一", 0.99)
    assert shape.reads_like_plate(_box(0, 0, 50, 12), "alamy", 0.5)  # unsure: shape decides
    assert shape.reads_like_plate(_box(0, 0, 100, 24), "B 01 XEN", 0.99)
    assert shape.reads_like_plate(_box(0, 0, 100, 24), "B·21·GSB", 0.91)  # separators pass
    assert shape.reads_like_plate(_box(0, 0, 100, 24), "日089414", 0.9)  # one misread letter
    assert shape.reads_like_plate(_box(0, 0, 100, 24), "M5xSX", 0.99)


def test_pass_scales_cap_far_pixels() -> None:
    assert pass_scales(1280, 720, far_pass=True, far_scale=2.0, max_far_pixels=4_000_000) == [
        1.0,
        pytest.approx(2.0, abs=0.2),
    ]
    assert pass_scales(1280, 720, far_pass=False, far_scale=2.0, max_far_pixels=1) == [1.0]
    big = pass_scales(6000, 4000, far_pass=True, far_scale=2.0, max_far_pixels=4_000_000)
    assert big == [pytest.approx(1600 / 6000), pytest.approx((4e6 / 24e6) ** 0.5)]
    capped = pass_scales(1280, 720, far_pass=True, far_scale=2.0, max_far_pixels=1_000_000)
    assert capped == [1.0]  # the pixel cap leaves no larger far pass: skipped


def test_near_pass_shrinks_only_under_a_full_far_pass() -> None:
    scales = {"far_scale": 2.0, "max_far_pixels": 4_000_000, "near_with_far": 0.5}
    assert pass_scales(1280, 720, far_pass=True, **scales) == [0.5, 2.0]
    assert pass_scales(400, 300, far_pass=True, **scales) == [0.5, 2.0]
    # the pixel cap cuts the far pass below 2x: the native pass keeps its full scale
    tall = pass_scales(918, 1632, far_pass=True, **scales)
    assert tall[0] == pytest.approx(1600 / 1632) and tall[1] < 2 * tall[0]
    assert pass_scales(1280, 720, far_pass=False, **scales) == [1.0]
    big = pass_scales(6000, 4000, far_pass=True, **scales)
    assert big[0] == pytest.approx(1600 / 6000)


def test_drop_nested_keeps_the_larger_box() -> None:
    kept = drop_nested([_box(10, 10, 20, 10), _box(0, 0, 100, 40), _box(200, 0, 50, 20)])
    assert sorted(b.bbox() for b in kept) == [(0, 0, 100, 40), (200, 0, 50, 20)]


def test_crop_quad_uprights_a_tall_box() -> None:
    img = np.zeros((100, 100, 3), np.uint8)
    quad = order_clockwise(np.array([[10, 10], [30, 10], [30, 90], [10, 90]], np.float32))
    assert crop_quad(img, quad).shape[:2] == (20, 80)


class _Passes:
    """A text detector answering each pass from a table (scale -> boxes)."""

    info = runtime = "stub"
    precision = "f32"

    def __init__(self, boxes: dict[float, list[TextBox]]) -> None:
        self._boxes = boxes

    def detect(self, _image: np.ndarray, *, scale: float) -> list[TextBox]:
        return self._boxes.get(scale, [])


class _Reader:
    """A recogniser reading every box as `text` (an unreadable blur: nothing)."""

    info = "stub"
    precision = "f32"

    def read(self, _image: np.ndarray, boxes: list[TextBox]) -> list[Reading]:
        return [Reading("", 0.0) for _ in boxes]


def test_a_rejected_larger_box_does_not_hide_the_plate_inside_it() -> None:
    # measured on a dashcam frame: the native pass at a reduced scale saw a 215 px "line"
    # over a truck that held a 15 px plate; the far pass's plate box lay inside it, was dropped
    # as nested, and the large box then failed the reading: plate lost
    big, plate = _box(100, 100, 300, 120), _box(150, 150, 44, 15)
    passes = _Passes({1.0: [big], 2.0: [plate]})
    detector = PlateDetector(
        text_detector=passes,  # type: ignore[arg-type]
        far_text_detector=passes,  # type: ignore[arg-type]
        recognizer=_Reader(),  # type: ignore[arg-type]
        far_rows="all",  # the stub sees text in a black image; busy rows would skip it
    )
    regions = detector.detect(np.zeros((480, 640, 3), np.uint8))
    assert [(r.x, r.y, r.w, r.h) for r in regions] == [plate.bbox()]


@pytest.fixture(scope="module")
def detector() -> PlateDetector:
    return PlateDetector(threshold=0.3, threads=1)


@pytest.mark.integration
def test_rendered_plate_is_found(detector: PlateDetector) -> None:
    img = _street()
    target = _with_plate(img, "AB 123 CD", 220, 300, 1.0)
    before = img.copy()
    regions = detector.detect(img)
    assert np.array_equal(img, before)  # detectors never mutate their input
    assert regions and all(r.label is Label.PLATE for r in regions)
    # The caller grows plate boxes by half their height (PlatePolicy.margin): then >= 90%.
    grown = [(r.x - r.h // 2, r.y - r.h // 2, r.w + r.h, 2 * r.h) for r in regions]
    assert any(_covered(g, target, 0.9) for g in grown)


@pytest.mark.integration
def test_far_plate_is_found(detector: PlateDetector) -> None:
    img = _street(1)
    target = _with_plate(img, "KA 4711", 400, 120, 0.45)
    assert target[3] < 24  # a far plate: under 24 px tall
    regions = detector.detect(img)
    grown = [(r.x - r.h // 2, r.y - r.h // 2, r.w + r.h, 2 * r.h) for r in regions]
    assert any(_covered(g, target, 0.9) for g in grown)


@pytest.mark.integration
def test_image_without_text_gives_nothing(detector: PlateDetector) -> None:
    img = _street(2)
    cv2.circle(img, (320, 240), 80, (30, 160, 30), -1)
    assert detector.detect(img) == []


@pytest.mark.integration
def test_model_info_names_the_files(detector: PlateDetector) -> None:
    assert detector.model.licence == "Apache-2.0"
    assert detector.model.file.endswith("ch_PP-OCRv4_det_infer.onnx")
    assert [len(m.sha256) for m in detector.models] == [64, 64]


@pytest.mark.integration
def test_far_pass_precision_is_read_back(caplog: pytest.LogCaptureFixture) -> None:
    bf16 = PlateDetector(threshold=0.3, threads=1, far_precision="bf16")
    # bf16 where the CPU has it (avx512_bf16 or AMX), f32 elsewhere: what OpenVINO compiled
    assert bf16.precisions["near"] in ("bf16", "f32")
    assert bf16.precisions["far"] in ("bf16", "f32")
    assert bf16.precisions["read"] in ("bf16", "f32")
    with caplog.at_level(logging.WARNING, logger="redaction.detectors.plates"):
        ort = PlateDetector(threshold=0.3, threads=1, far_precision="bf16", runtime="onnxruntime")
    assert ort.precisions == {"near": "f32", "far": "f32", "read": "f32"}
    assert "far asked for bf16 but runs in f32" in caplog.text
    assert "read asked for bf16 but runs in f32" in caplog.text


@pytest.mark.integration
def test_policy_precisions_reach_the_plate_detector() -> None:
    from redaction.policy import PlatePolicy, RedactionPolicy
    from redaction.registry import get_detector

    f32 = RedactionPolicy(
        plates=PlatePolicy(near_precision="f32", far_precision="f32", read_precision="f32")
    )
    built = get_detector("pp-ocrv4-plates", policy=f32, threads=1)
    assert built.precisions == {"near": "f32", "far": "f32", "read": "f32"}  # type: ignore[attr-defined]
    default = get_detector("pp-ocrv4-plates", policy=RedactionPolicy(), threads=1)
    # the default asks for bf16 reading; what runs is what OpenVINO compiled on this CPU
    assert default._recognizer.runtime == "openvino"  # type: ignore[attr-defined]
    assert default._far_detector is default._detector  # type: ignore[attr-defined]
    assert default.precisions["read"] in ("bf16", "f32")  # type: ignore[attr-defined]
    assert default._recognizer._min_width == 160  # type: ignore[attr-defined]


@pytest.mark.integration
@pytest.mark.parametrize("text", ["AB 123 CD", "KA 4711", "M-XY 908"])
def test_the_bf16_narrow_reader_reads_plates_as_the_f32_reader_does(text: str) -> None:
    from redaction.detectors.ocr import TextRecognizerModel

    img = _street(3)
    x, y, w, h = _with_plate(img, text, 100, 100, 0.9)
    box = _box(x, y, w, h)
    wide = TextRecognizerModel(threads=1, runtime="openvino")
    narrow = TextRecognizerModel(threads=1, runtime="openvino-bf16", min_width=160)
    [f32_reading] = wide.read(img, [box])
    [bf16_reading] = narrow.read(img, [box])
    # spaces do not count for plate decisions (letters and digits do)
    assert f32_reading.text.replace(" ", "") == text.replace(" ", "")
    assert bf16_reading.text.replace(" ", "") == f32_reading.text.replace(" ", "")
    assert abs(bf16_reading.score - f32_reading.score) < 0.05


def test_recogniser_batches_are_as_wide_as_their_widest_crop() -> None:
    from redaction.detectors.ocr import rec_batch

    def crops(*widths: int) -> list[np.ndarray]:
        return [np.full((48, w, 3), 200, np.uint8) for w in widths]

    assert rec_batch(crops(40, 100)).shape == (2, 3, 48, 320)  # PaddleOCR's 320 by default
    assert rec_batch(crops(40, 100), min_width=160).shape == (2, 3, 48, 160)
    assert rec_batch(crops(40, 170), min_width=160).shape == (2, 3, 48, 192)  # steps of 32
    assert rec_batch(crops(500), min_width=160).shape == (1, 3, 48, 512)
    assert rec_batch(crops(500)).shape == (1, 3, 48, 500)  # PaddleOCR's rule, as it always was
    # a crop is resized to 48 px high keeping its aspect ratio, the rest is padding (zero)
    batch = rec_batch([np.full((24, 50, 3), 255, np.uint8)], min_width=160)
    assert np.allclose(batch[0, :, :, :100], 1.0)
    assert not batch[0, :, :, 100:].any()


def test_a_recogniser_batch_narrower_than_its_height_is_refused() -> None:
    from redaction.detectors.ocr import TextRecognizerModel

    with pytest.raises(DetectorFailed, match="under its height"):
        TextRecognizerModel(min_width=32)


def test_unloadable_model_raises(tmp_path: Path) -> None:
    bad = tmp_path / "broken.onnx"
    bad.write_bytes(b"not a model")
    with pytest.raises(DetectorFailed):
        PlateDetector(det_model_path=bad)
    with pytest.raises(DetectorFailed):
        PlateDetector(det_model_path=tmp_path / "missing.onnx")


@pytest.mark.integration
def test_wrong_pixel_layout_raises(detector: PlateDetector) -> None:
    with pytest.raises(DetectorFailed):
        detector.detect(np.zeros((32, 32), np.uint8))


def test_detector_blob_is_paddleocr_normalisation() -> None:
    image = np.random.default_rng(3).integers(0, 256, (37, 53, 3), dtype=np.uint8)
    expected = (image.astype(np.float32) / 255.0 - 0.5) / 0.5
    blob = detector_blob(image)
    assert blob.shape == (1, 3, 37, 53) and blob.dtype == np.float32
    assert np.allclose(blob[0].transpose(1, 2, 0), expected, atol=1e-6)
