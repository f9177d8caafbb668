"""The review labelling configuration and what a reviewer's annotation says (pure)."""

from __future__ import annotations

from xml.etree import ElementTree

from gateway.review.labelconfig import (
    ENGINE_LABEL,
    engine_prediction,
    read_answer,
    review_label_config,
)
from gateway.review.models import ReviewDecision
from gateway.review.rerender import manual_regions


def _box(label: str, x: float, y: float, w: float, h: float) -> dict:
    return {
        "from_name": "missed",
        "to_name": "image",
        "type": "rectanglelabels",
        "original_width": 400,
        "original_height": 226,
        "value": {
            "x": x,
            "y": y,
            "width": w,
            "height": h,
            "rotation": 0,
            "rectanglelabels": [label],
        },
    }


def test_the_config_has_hotkeys_for_every_label_and_decision() -> None:
    root = ElementTree.fromstring(review_label_config())  # noqa: S314 (our own text)
    hotkeys = {e.get("value"): e.get("hotkey") for e in root.iter() if e.get("hotkey")}
    assert hotkeys == {
        "face": "f",
        "plate": "p",
        "text": "t",
        "release": "1",
        "reject": "2",
        "reprocess": "3",
    }
    assert len(root.findall("RectangleLabels")) == 1  # Label Studio draws with the first one


def test_boxes_keep_label_studios_fractions_and_the_engine_regions_are_ignored() -> None:
    result = [
        _box("face", 9.876543210987654, 60.123456789, 10.5, 20.25),
        _box(ENGINE_LABEL, 1, 1, 5, 5),  # an automatic region, moved: never a removal
        {"from_name": "decision", "type": "choices", "value": {"choices": ["release"]}},
    ]
    answer = read_answer(result, width=400, height=226)
    assert answer.decision is ReviewDecision.RELEASED
    (box,) = answer.boxes
    assert box.x == 9.876543210987654 * 400 / 100 and box.w == 10.5 * 4
    assert answer.findings() == {"face": 1, "plate": 0, "text": 0}
    (region,) = manual_regions(answer.boxes, width=400, height=226)
    assert (region.x, region.y) == (39, 135)  # rounded outwards: 39.5 -> 39, 135.88 -> 135
    assert region.x + region.w >= box.x + box.w and region.y + region.h >= box.y + box.h


def test_no_choice_or_two_choices_is_no_decision() -> None:
    assert read_answer([], width=10, height=10).decision is None
    two = {"from_name": "decision", "value": {"choices": ["release", "reject"]}}
    assert read_answer([two], width=10, height=10).decision is None


def test_engine_regions_become_a_prediction_in_percent() -> None:
    prediction = engine_prediction([{"x": 40, "y": 113, "w": 80, "h": 56}], width=400, height=226)
    (item,) = prediction["result"]
    assert item["value"]["x"] == 10.0 and item["value"]["y"] == 50.0
    assert item["value"]["rectanglelabels"] == [ENGINE_LABEL]
