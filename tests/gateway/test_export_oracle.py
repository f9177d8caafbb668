"""Our COCO, VOC and YOLO exports against Label Studio's own converter (label_studio_sdk.converter)
on the same task, with the fractional percentages Label Studio really writes.

Equal ignoring ids and file names, within these tolerances:
- COCO and YOLO rectangles, rotated rectangles, polygons: 1e-9 (relative), the converter and
  we do the same float arithmetic in a different order; no rounding on either side.
- COCO keypoints: 0.5 px, because the converter rounds keypoints to whole pixels (we do not).
- VOC: the converter truncates x, y, width and height to whole pixels (int()), we keep the
  decimals: its xmin/ymin are our floor, its xmax/ymax within 2 px of ours.
- Brush masks (its BRUSH_TO_COCO path): exact (both give whole-pixel contours).
Choices and the privacy flag are in none of the converter's image formats: see
test_export_golden.py."""

from __future__ import annotations

import json
import math
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
from label_studio_sdk.converter import Converter
from label_studio_sdk.converter.brush import mask2rle

from gateway.datasets import Ontology
from gateway.labelstudio import export_formats
from gateway.labelstudio.config import label_config
from gateway.labelstudio.export import ExportFormat, left_out
from gateway.labelstudio.regions import image_labels
from tests.labelstudio.export_compare import close, coco_shapes

W, H = 640, 427
DETECTION = Ontology.model_validate(
    {
        "labels": [
            {"name": "person", "control": "box"},
            {"name": "car", "control": "box"},
            {"name": "road", "control": "polygon"},
            {"name": "sky", "control": "brush"},
            {"name": "night", "control": "choice"},
        ]
    }
)
POSE = Ontology.model_validate(
    {
        "labels": [
            {"name": "person", "control": "box"},
            {"name": "nose", "control": "keypoint"},
            {"name": "left eye", "control": "keypoint"},
            {"name": "right eye", "control": "keypoint"},
        ]
    }
)


def _region(rid: str, from_name: str, kind: str, value: dict[str, Any], **extra: Any) -> dict:
    return {
        "id": rid,
        "from_name": from_name,
        "to_name": "image",
        "type": kind,
        "original_width": W,
        "original_height": H,
        "image_rotation": 0,
        "value": value,
        **extra,
    }


def _box(rid: str, label: str, x: float, y: float, w: float, h: float, r: float = 0) -> dict:
    value = {"x": x, "y": y, "width": w, "height": h, "rotation": r, "rectanglelabels": [label]}
    return _region(rid, "boxes", "rectanglelabels", value)


BOXES = [
    _box("b1", "person", 30.769230769230766, 12.345678901234567, 20.51282051282051, 33.3333333),
    _box("b2", "car", 1.0000000000000002, 60.1, 45.45454545454545, 20.000000000000004),
]
ROTATED = _box("b3", "car", 50.5, 20.25, 10.125, 30.0625, r=17.5)
POLYGON = _region(
    "p1",
    "polygons",
    "polygonlabels",
    {
        "points": [[10.1, 80.2], [35.35353535, 70.7], [60.606060606, 95.5], [12.0001, 99.9999]],
        "closed": True,
        "polygonlabels": ["road"],
    },
)


def _mask_rle() -> list[int]:
    mask = np.zeros((H, W), dtype=np.uint8)
    mask[20:90, 400:520] = 255  # two separate painted areas: two contours
    mask[200:260, 100:180] = 255
    mask[230:240, 120:130] = 0  # a hole (the converter keeps outer contours only)
    return [int(v) for v in mask2rle(mask)]


BRUSH = _region(
    "m1", "brush", "brushlabels", {"format": "rle", "rle": _mask_rle(), "brushlabels": ["sky"]}
)
CHOICE = {
    "id": "c1",
    "from_name": "image_labels",
    "to_name": "image",
    "type": "choices",
    "value": {"choices": ["night"]},
}
FLAG = {
    "id": "f1",
    "from_name": "privacy_flag",
    "to_name": "image",
    "type": "choices",
    "value": {"choices": ["face visible"]},
}
KEYPOINTS = [
    _region(
        "k1",
        "keypoints",
        "keypointlabels",
        {"x": 40.123456789, "y": 20.987654321, "width": 0.5, "keypointlabels": ["nose"]},
        parentID="b1",
    ),
    _region(
        "k2",
        "keypoints",
        "keypointlabels",
        {"x": 38.0000001, "y": 18.5, "width": 0.5, "keypointlabels": ["left eye"]},
        parentID="b1",
    ),
]


def _task(result: list[dict]) -> dict:
    return {
        "id": 7,
        "data": {"image": "/data/upload/1/street.jpg"},
        "annotations": [{"id": 1, "result": result, "was_cancelled": False, "completed_by": 1}],
    }


def _sdk(tmp_path: Path, ontology: Ontology, result: list[dict], fmt: str) -> Path:
    source = tmp_path / "task.json"
    source.write_text(json.dumps([_task(result)]))
    out = tmp_path / f"sdk-{fmt}"
    converter = Converter(label_config(ontology), str(tmp_path), download_resources=False)
    converter.convert(str(source), str(out), fmt, is_dir=False)
    return out


def _ours(ontology: Ontology, result: list[dict], fmt: ExportFormat) -> dict[str, bytes]:
    from gateway.labelstudio.export import write

    return write(fmt, [image_labels("asset-1", result, width=W, height=H)], ontology)


def test_coco_rectangles_rotated_and_polygons_match_the_converter(tmp_path: Path) -> None:
    result = [*BOXES, ROTATED, POLYGON, CHOICE]
    ours = coco_shapes(json.loads(_ours(DETECTION, result, ExportFormat.COCO)["annotations.json"]))
    theirs = coco_shapes(
        json.loads((_sdk(tmp_path, DETECTION, result, "COCO") / "result.json").read_text())
    )
    assert len(ours) == len(theirs) == 4
    for mine, sdk in zip(ours, theirs, strict=True):
        assert close(list(mine[:4]), list(sdk[:4])), (mine, sdk)
    # full precision: Label Studio's decimals reach the file unrounded
    person = next(s for s in ours if s[0] == "person")
    assert person[1][0] == 30.769230769230766 * W / 100


def test_coco_keypoints_beside_rectangles_match_the_converter(tmp_path: Path) -> None:
    result = [BOXES[0], *KEYPOINTS]
    ours = coco_shapes(json.loads(_ours(POSE, result, ExportFormat.COCO)["annotations.json"]))
    theirs = coco_shapes(
        json.loads((_sdk(tmp_path, POSE, result, "COCO") / "result.json").read_text())
    )
    assert [s[0] for s in ours] == [s[0] for s in theirs] == ["default", "person"]
    assert close(ours[1][:4], theirs[1][:4])  # the box, exactly
    kp_ours, kp_sdk = ours[0][4], theirs[0][4]
    assert close(kp_ours, kp_sdk, abs_tol=0.5)  # the converter rounds keypoints to pixels
    assert kp_ours[0] == 40.123456789 * W / 100  # ours does not
    assert close(ours[0][1], theirs[0][1], abs_tol=1.0)  # bbox of rounded vs exact points


def test_yolo_detection_and_pose_match_the_converter(tmp_path: Path) -> None:
    for ontology, result, name in (
        (DETECTION, [*BOXES, POLYGON], "street"),
        (POSE, [BOXES[0], *KEYPOINTS], "street"),
    ):
        folder = tmp_path / ontology.labels[-1].name
        folder.mkdir()
        sdk_dir = _sdk(folder, ontology, result, "YOLO")
        sdk_classes = (sdk_dir / "classes.txt").read_text().split("\n")
        sdk_lines = (sdk_dir / "labels" / f"{name}.txt").read_text().strip().splitlines()
        files = _ours(ontology, result, ExportFormat.YOLO)
        classes = files["classes.txt"].decode().split("\n")
        lines = files["labels/asset-1.txt"].decode().strip().splitlines()
        mine, theirs = _yolo_rows(lines, classes), _yolo_rows(sdk_lines, sdk_classes)
        assert [r[0] for r in mine] == [r[0] for r in theirs] and len(mine) >= 1
        assert all(close(list(a[1:]), list(b[1:])) for a, b in zip(mine, theirs, strict=True))


def _yolo_rows(lines: list[str], classes: list[str]) -> list[tuple]:
    rows = []
    for line in lines:
        cls, *values = line.split()
        rows.append((classes[int(cls)], *(float(v) for v in values)))
    return sorted(rows, key=lambda r: (r[0], len(r)))


def test_voc_rectangles_match_the_converter_to_its_whole_pixels(tmp_path: Path) -> None:
    ours = _ours(DETECTION, BOXES, ExportFormat.VOC)["Annotations/asset-1.xml"]
    sdk = (_sdk(tmp_path, DETECTION, BOXES, "VOC") / "Annotations" / "street.xml").read_bytes()
    mine, theirs = _voc_boxes(ours), _voc_boxes(sdk)
    assert [b[0] for b in mine] == [b[0] for b in theirs] == ["car", "person"]
    for (_, x0, y0, x1, y1), (_, sx0, sy0, sx1, sy1) in zip(mine, theirs, strict=True):
        assert (math.floor(x0), math.floor(y0)) == (sx0, sy0)
        assert abs(x1 - sx1) < 2 and abs(y1 - sy1) < 2
    assert mine[1][1] == 30.769230769230766 * W / 100  # decimals kept


def _voc_boxes(xml: bytes) -> list[tuple]:
    root = ET.fromstring(xml)  # noqa: S314  (our own and the converter's output)
    boxes = []
    for obj in root.iter("object"):
        corners = [
            float(obj.findtext(f"bndbox/{t}") or "nan") for t in ("xmin", "ymin", "xmax", "ymax")
        ]
        boxes.append((obj.findtext("name"), *corners))
    return sorted(boxes)


def test_brush_masks_match_the_converters_brush_to_coco(tmp_path: Path) -> None:
    result = [BRUSH, BOXES[0]]
    ours = json.loads(_ours(DETECTION, result, ExportFormat.COCO)["annotations.json"])
    sdk = json.loads(
        (_sdk(tmp_path, DETECTION, result, "BRUSH_TO_COCO") / "result_coco.json").read_text()
    )
    masks = [s for s in coco_shapes(ours) if s[0] == "sky"]
    theirs = [s for s in coco_shapes(sdk) if s[0] == "sky"]
    assert len(masks) == len(theirs) == 2
    assert [m[:4] for m in masks] == [t[:4] for t in theirs]  # whole pixels, exactly


def test_what_a_format_cannot_carry_is_counted_not_dropped_silently() -> None:
    image = image_labels("a", [*BOXES, POLYGON, BRUSH, CHOICE, FLAG], width=W, height=H)
    assert (len(image.boxes), len(image.polygons), len(image.masks), image.choices) == (
        2,
        1,
        1,
        ["night"],
    )
    assert image.skipped == 0  # the privacy flag is a report, not a region
    counts = Counter({f: left_out(f, image, pose=False) for f in ExportFormat})
    assert counts == {ExportFormat.COCO: 0, ExportFormat.VOC: 3, ExportFormat.YOLO: 2}
    assert export_formats.KEYPOINT_CATEGORY == "default"


def test_a_malformed_region_is_counted_not_a_crash() -> None:
    broken = [
        _region("x1", "boxes", "rectanglelabels", {"rectanglelabels": ["person"]}),  # no x
        _region(
            "x2",
            "brush",
            "brushlabels",
            {"format": "rle", "rle": [1, 2, 3], "brushlabels": ["sky"]},
        ),
        _region("x3", "polygons", "polygonlabels", {"points": [[1]], "polygonlabels": ["road"]}),
    ]
    image = image_labels("a", [*broken, BOXES[0]], width=W, height=H)
    assert image.skipped == 3 and len(image.boxes) == 1
