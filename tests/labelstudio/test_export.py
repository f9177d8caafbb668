"""Annotations made in Label Studio, exported from the gateway as COCO, Pascal VOC and YOLO
(residency-checked); images are named by asset id only."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import pytest

from gateway.core.db import transaction
from gateway.core.errors import ResidencyViolation
from gateway.core.models import Asset
from gateway.labelstudio.export import ExportFormat, export_annotations
from gateway.labelstudio.sync import sync_dataset
from tests.labelstudio.fixtures import ADMIN
from tests.labelstudio.helpers import lineage, project_tasks, sdk, wait_for_annotations


def _export(ctx, dataset, fmt, region=None):
    with transaction(ctx.engine) as s:
        return export_annotations(
            ctx, s, dataset_ref=dataset.name, fmt=fmt, actor=ADMIN, target_region=region
        )


def test_export_coco_voc_yolo_from_label_studio_annotations(
    ctx, dataset, released, destination, labelstudio
) -> None:
    report = sync_dataset(
        ctx, dataset_ref=dataset.name, destination_ref=destination.name, actor=ADMIN
    )
    task = project_tasks(labelstudio, report.project_id)[0]
    asset_id = task["data"]["gateway_asset_id"]
    with transaction(ctx.engine) as s:
        asset = s.get(Asset, asset_id)
        width, height = asset.width, asset.height
    box = {
        "from_name": "boxes",
        "to_name": "image",
        "type": "rectanglelabels",
        "value": {"x": 10, "y": 20, "width": 50, "height": 25, "rectanglelabels": ["person"]},
    }
    with sdk(labelstudio) as client:
        client.annotations.create(task["id"], result=[box])
    wait_for_annotations(ctx, 1)  # read back from Label Studio after the webhook's answer

    coco = json.loads(_export(ctx, dataset, ExportFormat.COCO).files["annotations.json"])
    assert coco["categories"] == [{"id": 1, "name": "person"}]
    assert [i["file_name"] for i in coco["images"]] == [f"{asset_id}.jpg"]
    x, y, w, h = coco["annotations"][0]["bbox"]
    assert (x, y) == pytest.approx((width * 0.10, height * 0.20), abs=0.01)
    assert (w, h) == pytest.approx((width * 0.50, height * 0.25), abs=0.01)

    voc = _export(ctx, dataset, ExportFormat.VOC).files
    root = ET.fromstring(voc[f"Annotations/{asset_id}.xml"])  # noqa: S314  (our own output)
    assert root.findtext("object/name") == "person"
    assert float(root.findtext("object/bndbox/xmin")) == pytest.approx(width * 0.10)

    yolo = _export(ctx, dataset, ExportFormat.YOLO).files
    assert yolo["classes.txt"] == b"person\n"
    cls, cx, cy, bw, bh = yolo[f"labels/{asset_id}.txt"].decode().split()
    assert cls == "0"
    assert [float(v) for v in (cx, cy, bw, bh)] == pytest.approx([0.35, 0.325, 0.5, 0.25])
    assert len(lineage(ctx, "annotations.exported")) == 3

    with pytest.raises(ResidencyViolation):
        _export(ctx, dataset, ExportFormat.COCO, region="us-east")
