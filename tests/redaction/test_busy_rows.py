"""The far plate pass's row gate: flat bands left out, text rows and their context kept."""

from __future__ import annotations

import cv2
import numpy as np

from redaction.detectors.busy_rows import MARGIN, busy_row_band
from redaction.detectors.ocr import TextBox
from redaction.detectors.plates import _far_boxes_in_rows


def _flat(height: int = 480, width: int = 640) -> np.ndarray:
    rng = np.random.default_rng(0)
    noise = rng.integers(60, 90, size=(height, width, 3), dtype=np.uint8)
    return cv2.GaussianBlur(noise, (9, 9), 0)  # a dark, grainy night road: no strong edges


def test_an_image_without_edges_has_no_busy_rows() -> None:
    assert busy_row_band(_flat()) == (0, 0)
    assert busy_row_band(np.zeros((37, 53, 3), np.uint8)) == (0, 0)


def test_small_text_keeps_its_rows_and_their_context() -> None:
    img = _flat()
    cv2.putText(img, "KA 4711", (300, 250), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (240, 240, 240), 1)
    y0, y1 = busy_row_band(img)
    assert y0 <= 250 - 10 - MARGIN + 16 and y1 >= 250 + MARGIN  # text ~240..252, cells of 16
    assert y0 > 0 and y1 < 480  # the flat bands above and below are left out
    assert (y1 - y0) <= 4 * 16 + 2 * MARGIN


def test_text_at_the_edges_keeps_every_row() -> None:
    img = _flat(200, 300)
    cv2.putText(img, "AB12", (5, 12), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (240, 240, 240), 1)
    cv2.putText(img, "CD34", (200, 197), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (240, 240, 240), 1)
    assert busy_row_band(img) == (0, 200)


class _Recorder:
    """A text detector that sees one box at (10, 5) of whatever image it is given."""

    def __init__(self) -> None:
        self.shapes: list[tuple[int, ...]] = []

    def detect(self, image: np.ndarray, *, scale: float) -> list[TextBox]:  # noqa: ARG002
        self.shapes.append(image.shape)
        quad = np.array([[10, 5], [50, 5], [50, 15], [10, 15]], np.float32)
        return [TextBox(quad, 0.9)]


def test_far_pass_boxes_come_back_in_the_whole_images_pixels() -> None:
    img = np.zeros((480, 640, 3), np.uint8)
    detector = _Recorder()
    [box] = _far_boxes_in_rows(detector, img, 2.0, (100, 300))  # type: ignore[arg-type]
    assert detector.shapes == [(200, 640, 3)]
    assert box.bbox() == (10, 105, 40, 10)
    assert _far_boxes_in_rows(detector, img, 2.0, (0, 0)) == []  # type: ignore[arg-type]
    assert len(detector.shapes) == 1  # no busy row: the far pass does not run
    [whole] = _far_boxes_in_rows(detector, img, 2.0, (0, 480))  # type: ignore[arg-type]
    assert whole.bbox() == (10, 5, 40, 10) and detector.shapes[-1] == (480, 640, 3)
