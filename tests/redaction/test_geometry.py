"""The one IoU helper (redaction.geometry.box_iou) that the report's agreement figures and the
ML backend's matching share."""

from __future__ import annotations

import pytest

from gateway.reports.agreement import Box, iou
from ml_backend.detections import Detection
from redaction.geometry import box_iou


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        ((0, 0, 10, 10), (0, 0, 10, 10), 1.0),
        ((0, 0, 10, 10), (20, 20, 5, 5), 0.0),
        ((0, 0, 10, 10), (10, 0, 10, 10), 0.0),  # touching edges share no area
        ((0, 0, 10, 10), (5, 0, 10, 10), 50 / 150),
        ((0, 0, 10, 10), (2, 2, 5, 5), 25 / 100),  # one inside the other
        ((0, 0, 0, 0), (0, 0, 0, 0), 0.0),  # no area: no overlap, not a division by zero
    ],
)
def test_box_iou(a: tuple[float, ...], b: tuple[float, ...], expected: float) -> None:
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    assert box_iou((ax, ay, aw, ah), (bx, by, bw, bh)) == pytest.approx(expected)
    assert box_iou((bx, by, bw, bh), (ax, ay, aw, ah)) == pytest.approx(expected)


def test_the_report_and_the_ml_backend_use_it() -> None:
    a, b = (1.0, 2.0, 30.0, 40.0), (11.0, 12.0, 30.0, 40.0)
    expected = box_iou(a, b)
    assert 0 < expected < 1
    assert iou(Box(*a, label="face"), Box(*b, label="face")) == expected
    first = Detection("person", *a, score=0.9, source="s")
    assert first.iou(Detection("person", *b, score=0.8, source="s")) == expected
