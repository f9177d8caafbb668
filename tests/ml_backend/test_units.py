"""The pure parts: label configs, class mapping, calibration, YOLO decoding, GrabCut assist."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from ml_backend.assist import BadContext, Seed, assist_results, parse_seed, segment
from ml_backend.calibration import (
    BINS,
    CalibrationStore,
    Evidence,
    best_threshold_milli,
    evidence_for,
    project_key,
)
from ml_backend.detections import Detection
from ml_backend.labelconfig import ControlKind, UnsupportedConfig, parse_label_config
from ml_backend.mapping import LabelMapping, MappingError
from ml_backend.results import Labelled
from ml_backend.sources.onnx_yolo import OnnxModelError, decode_yolo

CONFIG = """
<View>
  <Header value="Label people"/>
  <Image name="img" value="$image" zoom="true"/>
  <RectangleLabels name="box" toName="img" smart="true">
    <Label value="Walker" predicted_values="person, pedestrian"/>
    <Label value="Licence plate"/>
  </RectangleLabels>
  <Choices name="kind" toName="img" choice="multiple"><Choice value="Street"/></Choices>
  <TextArea name="notes" toName="img"/>
  <Labels name="ner" toName="txt"><Label value="X"/></Labels>
</View>"""


def test_config_finds_the_image_and_its_controls() -> None:
    schema = parse_label_config(CONFIG)
    assert schema.image_name == "img"
    assert [(c.kind, c.name) for c in schema.controls] == [
        (ControlKind.RECTANGLE, "box"),
        (ControlKind.CHOICES, "kind"),
    ]
    box = schema.controls[0]
    assert box.smart and box.labels[0].predicted_values == ("person", "pedestrian")
    assert schema.controls[1].single_choice is False


@pytest.mark.parametrize(
    ("config", "reason"),
    [
        ("", "empty"),
        ("<View><Image name='i' value='$i'/>", "well-formed"),
        ("<View><Text name='t' value='$t'/></View>", "no single-image"),
        (
            "<View><Image name='i' valueList='$i'/><RectangleLabels name='b' toName='i'>"
            "<Label value='a'/></RectangleLabels></View>",
            "no single-image",
        ),
        (
            "<View><Image name='i' value='$i'/><RectangleLabels name='b' toName='other'>"
            "<Label value='a'/></RectangleLabels></View>",
            "no RectangleLabels",
        ),
        (
            '<!DOCTYPE v [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;">]>'
            "<View><Image name='i' value='$i'/></View>",
            "well-formed",
        ),
        ("<View>" + "<Header value='x'/>" * 20000 + "</View>", "larger than"),
    ],
)
def test_configs_that_cannot_be_served_say_why(config: str, reason: str) -> None:
    with pytest.raises(UnsupportedConfig, match=reason):
        parse_label_config(config)


def test_mapping_prefers_predicted_values_then_synonyms_then_names(tmp_path: Path) -> None:
    schema = parse_label_config(CONFIG)
    box = schema.controls[0]
    mapping = LabelMapping.load(None)
    assert mapping.label_for(box, "person") == "Walker"
    assert mapping.label_for(box, "plate") == "Licence plate"
    assert mapping.label_for(box, "face") is None
    custom = tmp_path / "map.yaml"
    custom.write_text("face: [walker]\nplate: []\n")
    mapped = LabelMapping.load(custom)
    assert mapped.label_for(box, "face") == "Walker"
    assert mapped.label_for(box, "plate") is None  # the admin switched the synonym off
    bad = tmp_path / "bad.yaml"
    bad.write_text("face: {nested: 1}\n")
    with pytest.raises(MappingError):
        LabelMapping.load(bad)


def test_best_threshold_separates_positive_from_negative_scores() -> None:
    ev = Evidence()
    for score in (0.72, 0.8, 0.9, 0.95):
        ev.pos[int(score * BINS)] += 1
    for score in (0.1, 0.2, 0.3, 0.52):
        ev.neg[int(score * BINS)] += 1
    milli = best_threshold_milli(ev)
    assert 550 <= milli <= 700


def test_evidence_matches_candidates_to_annotated_boxes() -> None:
    schema = parse_label_config(CONFIG)
    box = schema.controls[0]
    hit = Detection("person", 10, 10, 50, 100, 0.8, "people")
    miss = Detection("person", 200, 10, 50, 100, 0.3, "people")
    labelled = [Labelled(hit, box, "Walker"), Labelled(miss, box, "Walker")]
    annotated = [("Walker", (12.0, 12.0, 50.0, 100.0)), ("Walker", (400.0, 0.0, 40.0, 90.0))]
    ev = evidence_for(labelled, annotated)["Walker"]
    assert sum(ev.pos) == 1 and ev.pos[16] == 1
    assert sum(ev.neg) == 1 and ev.neg[6] == 1
    assert ev.missed == 1


def test_calibration_revision_moves_with_thresholds(tmp_path: Path) -> None:
    store = CalibrationStore(tmp_path)
    strong = Evidence()
    strong.pos[18] += 3
    strong.neg[4] += 3
    calibration, changed = store.update("5", "1", {"Walker": strong})
    assert changed and calibration.revision == 1 and "Walker" in calibration.thresholds_milli
    _, changed = store.update("5", "1", {"Walker": strong})
    assert not changed and store.load("5").revision == 1
    calibration, changed = store.update("5", "1", None)
    assert changed and calibration.revision == 2 and calibration.thresholds_milli == {}
    with pytest.raises(ValueError, match="project id"):
        store.load("../etc")
    assert project_key("12.1700000000") == "12" and project_key("x.1") is None


def test_yolo_tables_in_both_layouts() -> None:
    v8 = np.zeros((1, 6, 2), np.float32)  # (4 + 2 classes, 2 candidates)
    v8[0, :, 0] = [32, 32, 20, 40, 0.9, 0.1]
    v8[0, :, 1] = [10, 10, 8, 8, 0.01, 0.02]
    boxes, scores, ids = decode_yolo(v8, num_classes=2)
    assert boxes.tolist() == [[22.0, 12.0, 20.0, 40.0]]
    assert scores.tolist() == pytest.approx([0.9]) and ids.tolist() == [0]
    v5 = np.array([[[5, 5, 4, 4, 0.5, 0.2, 0.8]]], np.float32)  # objectness x class score
    _, scores, ids = decode_yolo(v5, num_classes=2)
    assert scores.tolist() == pytest.approx([0.4]) and ids.tolist() == [1]
    with pytest.raises(OnnxModelError):
        decode_yolo(np.zeros((1, 9, 3), np.float32), num_classes=2)


def _ellipse_scene() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(7)
    image = rng.integers(90, 140, size=(240, 320, 3), dtype=np.uint8)
    truth = np.zeros((240, 320), np.uint8)
    cv2.ellipse(truth, (160, 120), (60, 80), 0, 0, 360, 255, -1)
    image[truth > 0] = (30, 40, 200)
    return image, truth


def test_grabcut_turns_a_rough_rectangle_into_a_tight_outline() -> None:
    image, truth = _ellipse_scene()
    mask = segment(image, Seed(label="Blob", rect=(85, 25, 150, 190)))
    assert mask is not None
    inter = np.logical_and(mask > 0, truth > 0).sum()
    union = np.logical_or(mask > 0, truth > 0).sum()
    assert inter / union > 0.9


def test_a_keypoint_click_seeds_the_object_too() -> None:
    image, truth = _ellipse_scene()
    mask = segment(image, Seed(label="Blob", positives=[(160, 120)]))
    assert mask is not None
    inside = np.logical_and(mask > 0, truth > 0).sum() / (mask > 0).sum()
    assert inside > 0.9


def test_assist_results_follow_the_project_controls() -> None:
    image, _ = _ellipse_scene()
    schema = parse_label_config(
        "<View><Image name='i' value='$image'/>"
        "<RectangleLabels name='r' toName='i' smart='true'><Label value='Blob'/></RectangleLabels>"
        "<PolygonLabels name='p' toName='i'><Label value='Blob'/></PolygonLabels>"
        "<BrushLabels name='b' toName='i'><Label value='Other'/></BrushLabels></View>"
    )
    context = {
        "result": [
            {
                "type": "rectanglelabels",
                "original_width": 320,
                "original_height": 240,
                "value": {
                    "x": 26.5,
                    "y": 10.4,
                    "width": 47.0,
                    "height": 79.0,
                    "rectanglelabels": ["Blob"],
                },
            }
        ]
    }
    seed = parse_seed(context, width=320, height=240)
    assert seed is not None and seed.label == "Blob"
    results = assist_results(image, seed, schema=schema)
    assert [r["type"] for r in results] == ["polygonlabels"]  # no "Blob" on the brush control
    points = results[0]["value"]["points"]
    xs = [p[0] * 3.2 for p in points]
    assert min(xs) == pytest.approx(100, abs=6) and max(xs) == pytest.approx(220, abs=6)
    assert 0 < results[0]["score"] <= 1


@pytest.mark.parametrize(
    "context",
    [
        {"result": "x"},
        {"result": [{"type": "rectanglelabels"}]},
        {"result": [{"type": "keypointlabels", "value": {"x": "a", "y": 1}}]},
    ],
)
def test_bad_interactive_contexts_are_refused(context: dict[str, object]) -> None:
    with pytest.raises(BadContext):
        parse_seed(context, width=10, height=10)


def test_a_context_without_gestures_seeds_nothing() -> None:
    assert parse_seed({"result": [{"type": "choices", "value": {}}]}, width=9, height=9) is None
