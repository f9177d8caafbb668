"""Non-maximum suppression: OpenCV's C++ path answers exactly as the greedy loop it replaces."""

from __future__ import annotations

import numpy as np
import pytest

from redaction.detectors import tiling
from redaction.detectors.tiling import merge_boxes


def _loop(
    boxes: np.ndarray, *, iou: float, grow: bool, monkeypatch: pytest.MonkeyPatch
) -> np.ndarray:
    with monkeypatch.context() as patch:
        patch.setattr(tiling, "_opencv_can_suppress", lambda _boxes: False)
        return merge_boxes(boxes, iou=iou, grow=grow)


def _candidates(seed: int, count: int) -> np.ndarray:
    """Clusters of overlapping sub-pixel boxes, scores on a coarse grid (many ties, as the
    int8 heatmap gives)."""
    rng = np.random.default_rng(seed)
    centres = rng.uniform(0, 300, (count // 8, 2)).repeat(8, axis=0) + rng.normal(0, 3, (count, 2))
    sides = rng.uniform(3, 40, (count, 1)) * rng.uniform(0.8, 1.25, (count, 2))
    scores = np.round(rng.uniform(0.01, 1, (count, 1)), 2)
    return np.hstack([centres - sides / 2, centres + sides / 2, scores]).astype(np.float32)


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("iou", [0.3, 0.4])
@pytest.mark.parametrize("grow", [False, True])
def test_opencv_path_equals_the_loop(
    seed: int, iou: float, grow: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    boxes = _candidates(seed, 400)
    fast = merge_boxes(boxes, iou=iou, grow=grow)
    assert 0 < len(fast) < len(boxes)
    np.testing.assert_array_equal(fast, _loop(boxes, iou=iou, grow=grow, monkeypatch=monkeypatch))


def test_a_box_at_exactly_the_threshold_is_suppressed() -> None:
    boxes = np.array([[0, 0, 2, 1, 0.9], [0, 0, 1, 1, 0.8]], np.float32)  # IoU exactly 0.5
    assert merge_boxes(boxes, iou=0.5, grow=False).tolist() == [[0, 0, 2, 1, pytest.approx(0.9)]]
    assert len(merge_boxes(boxes, iou=0.5001, grow=False)) == 2


def test_sub_pixel_coordinates_are_not_rounded() -> None:
    # IoU 0.143 as given; 0.25 if the corners were cut to whole pixels
    boxes = np.array([[0, 0, 1.5, 1.5, 0.9], [0.75, 0.75, 2.25, 2.25, 0.8]], np.float32)
    assert len(merge_boxes(boxes, iou=0.2, grow=False)) == 2


def test_ties_go_to_the_earlier_box() -> None:
    boxes = np.array([[10, 10, 20, 20, 0.5], [11, 11, 21, 21, 0.5]], np.float32)
    assert merge_boxes(boxes, iou=0.3, grow=False)[:, :4].tolist() == [[10, 10, 20, 20]]


@pytest.mark.parametrize(
    "boxes",
    [
        [[5, 5, 5, 9, 0.9], [5, 5, 5, 9, 0.8]],  # empty boxes: disjoint for `_iou`
        [[0, 0, 10, 10, 0.0], [1, 1, 11, 11, 0.0]],  # zero scores: OpenCV would drop them
        [[0, 0, 10, 10, np.nan], [1, 1, 11, 11, 0.5]],
    ],
)
def test_boxes_opencv_would_treat_differently_take_the_loop(
    boxes: list[list[float]], monkeypatch: pytest.MonkeyPatch
) -> None:
    array = np.array(boxes, np.float32)
    assert not tiling._opencv_can_suppress(array)
    np.testing.assert_array_equal(
        merge_boxes(array, iou=0.3, grow=False),
        _loop(array, iou=0.3, grow=False, monkeypatch=monkeypatch),
    )


def test_no_boxes() -> None:
    assert merge_boxes(np.zeros((0, 5), np.float32), iou=0.3, grow=True).shape == (0, 5)
