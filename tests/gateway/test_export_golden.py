"""What label-studio-sdk's converter does not cover, against golden files written by hand from
Label Studio's own JSON export of one task with every control (tests/data/labelstudio/golden/
README.md shows the arithmetic). Floats within 1e-9 relative; whole pixels exactly."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

from gateway.datasets import Ontology
from gateway.labelstudio.export import ExportFormat, left_out, write
from gateway.labelstudio.regions import image_labels
from tests.labelstudio.export_compare import close

DATA = Path(__file__).resolve().parents[1] / "data" / "labelstudio"
GOLDEN = DATA / "golden"
ONTOLOGY = Ontology.model_validate(
    {
        "labels": [
            {"name": "person", "control": "box"},
            {"name": "road", "control": "polygon"},
            {"name": "sky", "control": "brush"},
            {"name": "nose", "control": "keypoint"},
            {"name": "left eye", "control": "keypoint"},
            {"name": "night", "control": "choice"},
        ]
    }
)


def _image():  # type: ignore[no-untyped-def]
    (task,) = json.loads((DATA / "all_controls_export.json").read_text())
    (annotation,) = task["annotations"]
    asset = task["data"]["gateway_asset_id"]
    return image_labels(asset, annotation["result"], width=0, height=0)


def _export(fmt: ExportFormat) -> tuple[dict[str, bytes], int]:
    image = _image()
    files = write(fmt, [image], ONTOLOGY)
    return files, image.skipped


def test_coco_of_every_control_equals_the_golden_file() -> None:
    files, skipped = _export(ExportFormat.COCO)
    ours = json.loads(files["annotations.json"])
    golden = json.loads((GOLDEN / "coco.json").read_text())
    assert ours["images"] == golden["images"]  # the choice travels as image_labels
    assert ours["categories"] == golden["categories"]
    assert len(ours["annotations"]) == len(golden["annotations"])
    for mine, want in zip(ours["annotations"], golden["annotations"], strict=True):
        assert mine.keys() == want.keys()
        assert all(close(mine[k], want[k]) for k in want), (mine, want)
    assert skipped == 0


def test_voc_and_yolo_of_every_control_equal_the_golden_files() -> None:
    voc, voc_skipped = _export(ExportFormat.VOC)
    ours = ET.fromstring(voc["Annotations/asset-golden.xml"])  # noqa: S314  (our own output)
    want = ET.fromstring((GOLDEN / "voc.xml").read_bytes())  # noqa: S314  (committed file)
    assert [e.tag for e in ours.iter()] == [e.tag for e in want.iter()]
    for a, b in zip(ours.iter(), want.iter(), strict=True):
        text_a, text_b = (a.text or "").strip(), (b.text or "").strip()
        numeric = text_b.replace(".", "", 1).isdigit()
        assert close(float(text_a), float(text_b)) if numeric else text_a == text_b
    assert voc_skipped == 4  # polygon, brush, keypoint, choice

    yolo, yolo_skipped = _export(ExportFormat.YOLO)
    assert yolo["classes.txt"] == (GOLDEN / "yolo_classes.txt").read_bytes()
    lines = yolo["labels/asset-golden.txt"].decode().split()
    golden = (GOLDEN / "yolo_labels.txt").read_text().split()
    assert close([float(v) for v in lines], [float(v) for v in golden])
    assert yolo_skipped == 3  # polygon, brush, choice (pose lines carry boxes and keypoints)


def test_the_privacy_flag_is_in_no_export() -> None:
    image = _image()
    assert image.count() == 5 and image.skipped == 0  # box, polygon, mask, keypoint, choice
    assert [left_out(f, image, pose=True) for f in ExportFormat] == [0, 4, 3]
    for fmt in ExportFormat:
        files, _ = _export(fmt)
        assert not any(b"face visible" in body for body in files.values())
