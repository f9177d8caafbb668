"""Reading order of OCR word boxes: slanted lines, far-apart words, lines that touch."""

from __future__ import annotations

import numpy as np
import pytest

from redaction.detectors.ocr import Reading, TextBox
from redaction.detectors.text_layout import reading_order, text_in_lines, words_in_reading_order


def _box(x: float, y: float, w: float, h: float, angle_deg: float = 0.0) -> TextBox:
    """A text box of size w x h whose top-left corner is (x, y), turned by angle_deg."""
    a = np.radians(angle_deg)
    along, across = np.array([np.cos(a), np.sin(a)]), np.array([-np.sin(a), np.cos(a)])
    corners = [
        np.array([x, y]) + along * dx + across * dy for dx, dy in ((0, 0), (w, 0), (w, h), (0, h))
    ]
    return TextBox(np.array(corners, np.float32), 0.9)


@pytest.mark.parametrize("angle", [0.0, 10.0, -10.0, 25.0, -25.0])
def test_reading_order_follows_slanted_lines(angle: float) -> None:
    # Two lines of four words, 60 px high, 90 px apart, each word 150 px wide with 30 px gaps.
    rad = np.radians(angle)
    words = {}
    for line in range(2):
        for k in range(4):
            start = (
                np.array([100.0, 300.0 + 90 * line])
                + np.array([np.cos(rad), np.sin(rad)]) * 180 * k
            )
            words[line, k] = _box(*start, 150, 60, angle)
    shuffled = [(1, 3), (0, 1), (1, 0), (0, 3), (1, 1), (0, 0), (1, 2), (0, 2)]
    order = reading_order([words[key] for key in shuffled])
    assert [[shuffled[i] for i in line] for line in order] == [
        [(0, 0), (0, 1), (0, 2), (0, 3)],
        [(1, 0), (1, 1), (1, 2), (1, 3)],
    ]


def test_reading_order_keeps_far_apart_words_and_narrow_boxes_sensible() -> None:
    boxes = [_box(900, 110, 100, 40), _box(100, 100, 200, 40), _box(310, 102, 20, 40)]
    # The narrow box (one character) joins its neighbour; the far word is a line of its own.
    assert reading_order(boxes) == [[1, 2], [0]]
    assert reading_order([]) == []


def test_reading_order_keeps_a_slanted_line_out_of_a_level_one_it_touches() -> None:
    level = [_box(100, 300, 150, 50), _box(280, 300, 150, 50)]
    # Rising at 25 degrees, its first word starts 20 px after the level line, in its band.
    rising = [_box(450 + 163 * k, 330 - 76 * k, 150, 50, -25.0) for k in range(3)]
    assert reading_order(level + rising) == [[2, 3, 4], [0, 1]]


def test_words_share_their_box_by_characters_and_keep_their_line() -> None:
    boxes = [_box(100, 200, 300, 40), _box(100, 100, 120, 40)]
    readings = [Reading("ab cdef", 0.5), Reading("hello", 0.9)]
    words = words_in_reading_order(boxes, readings)
    assert words["text"] == ["hello", "ab", "cdef"]
    assert words["line_num"] == [0, 1, 1]
    # 7 characters over 300 px: "cdef" starts after 3 characters and spans 4.
    assert words["left"][1:] == [100, round(100 + 3 * 300 / 7)]
    assert words["width"][1:] == [round(2 * 300 / 7), round(4 * 300 / 7)]
    assert text_in_lines(words) == "hello\nab cdef"
    assert text_in_lines({}) == ""
