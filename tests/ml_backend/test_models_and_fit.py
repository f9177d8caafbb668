"""An admin's ONNX model (a tiny real one built here), interactive assist over HTTP, and `fit`
from annotation webhooks changing the model version."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from fastapi.testclient import TestClient
from sqlmodel import select

from gateway.core.context import GatewayContext
from gateway.core.db import transaction
from gateway.core.models import LineageRecord
from ml_backend.app import create_app
from ml_backend.settings import MLBackendSettings
from ml_backend.sources.base import SourceSet
from ml_backend.sources.loading import load_sources
from ml_backend.sources.onnx_yolo import OnnxYoloSource
from tests.ml_backend.conftest import (
    PEOPLE,
    PLATE,
    HeldInLabelStudio,
    Released,
    auth,
    ml_settings,
)

pytestmark = [pytest.mark.db, pytest.mark.integration]


def tiny_yolo(path: Path) -> Path:
    """A real ONNX graph: a 64x64 image in, a YOLOv8-style (1, 4 + 2 classes, 3) table out
    (a fixed table plus 0 x the image mean, so the output depends on running the graph)."""
    onnx = pytest.importorskip("onnx", reason="the onnx package builds the test model")
    from onnx import TensorProto, helper, numpy_helper

    table = np.zeros((1, 6, 3), np.float32)
    table[0, :, 0] = [32, 32, 20, 40, 0.9, 0.1]  # a person in the middle
    table[0, :, 1] = [10, 24, 8, 8, 0.05, 0.8]  # a car on the left
    table[0, :, 2] = [50, 50, 4, 4, 0.01, 0.02]  # noise below the floor
    nodes = [
        helper.make_node("ReduceMean", ["images"], ["mean"], keepdims=0),
        helper.make_node("Mul", ["mean", "zero"], ["nothing"]),
        helper.make_node("Add", ["table", "nothing"], ["output0"]),
    ]
    graph = helper.make_graph(
        nodes,
        "tiny-yolo",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, 64, 64])],
        [helper.make_tensor_value_info("output0", TensorProto.FLOAT, [1, 6, 3])],
        initializer=[
            numpy_helper.from_array(table, "table"),
            numpy_helper.from_array(np.array(0.0, np.float32), "zero"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def test_onnx_model_boxes_come_back_in_image_pixels(tmp_path: Path) -> None:
    model = tiny_yolo(tmp_path / "tiny.onnx")
    source = OnnxYoloSource(model, ("person", "car"), threshold=0.35)
    found = source.detect(np.full((128, 256, 3), 100, np.uint8))  # letterboxed: ratio 0.25
    by_class = {d.model_class: d for d in found}
    assert set(by_class) == {"person", "car"}
    person = by_class["person"]
    # the 64x32 letterboxed image sits 16 px down: the person's box, 4x larger, is clipped
    # to the image; the car's (6..14, 20..28) becomes (24..56, 16..48)
    assert (person.x, person.y, person.w, person.h) == pytest.approx((88, 0, 80, 128))
    car = by_class["car"]
    assert (car.x, car.y, car.w, car.h) == pytest.approx((24, 16, 32, 32))
    assert person.score == pytest.approx(0.9)


def test_onnx_source_through_the_app_maps_classes(
    ctx: GatewayContext, released: Released, sources: SourceSet, tmp_path: Path
) -> None:
    model = tiny_yolo(tmp_path / "tiny.onnx")
    classes = tmp_path / "classes.txt"
    classes.write_text("person\ncar\n")
    settings = ml_settings(tmp_path, sources=("onnx",), onnx_model=model, onnx_classes=classes)
    config = (
        "<View><Image name='image' value='$image'/><RectangleLabels name='box' toName='image'>"
        "<Label value='Car'/><Label value='Person'/></RectangleLabels></View>"
    )
    with TestClient(create_app(settings, ctx=ctx)) as client:  # loads its models at start
        assert client.get("/health", headers=auth()).json()["sources"]["onnx"].startswith("onnx:")
        body = {"tasks": [released.task(PEOPLE)], "project": 4, "label_config": config}
        (prediction,) = client.post("/predict", json=body, headers=auth()).json()["results"][0]
    labels = sorted(r["value"]["rectanglelabels"][0] for r in prediction["result"])
    assert labels == ["Car", "Person"]
    assert prediction["score"] == pytest.approx(0.8)


def test_a_missing_optional_model_means_no_predictions_not_an_error(tmp_path: Path) -> None:
    settings = MLBackendSettings(
        sources=("onnx",), onnx_model=tmp_path / "absent.onnx", onnx_classes=tmp_path / "c.txt"
    )
    loaded = load_sources(settings)
    assert loaded.sources == ()
    assert "does not exist" in loaded.unavailable["onnx"]
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"not an onnx model")
    (tmp_path / "c.txt").write_text("person\n")
    settings = settings.model_copy(update={"onnx_model": broken})
    assert "cannot be used" in load_sources(settings).unavailable["onnx"]


INTERACTIVE = """
<View>
  <Image name="image" value="$image"/>
  <RectangleLabels name="box" toName="image" smart="true"><Label value="Person"/></RectangleLabels>
  <PolygonLabels name="outline" toName="image"><Label value="Person"/></PolygonLabels>
  <BrushLabels name="mask" toName="image"><Label value="Person"/></BrushLabels>
</View>"""


def test_interactive_rectangle_returns_polygon_and_brush(
    client: TestClient, released: Released, ctx: GatewayContext
) -> None:
    gesture = {
        "type": "rectanglelabels",
        "from_name": "box",
        "to_name": "image",
        "original_width": 400,
        "original_height": 267,
        "value": {"x": 40, "y": 20, "width": 25, "height": 60, "rectanglelabels": ["Person"]},
    }
    body = {
        "tasks": [released.task(PEOPLE)],
        "project": "9.1700000000",
        "label_config": INTERACTIVE,
        "params": {"login": None, "password": None, "context": {"result": [gesture]}},
    }
    response = client.post("/predict", json=body, headers=auth())
    assert response.status_code == 200
    (prediction,) = response.json()["results"][0]
    types = sorted(r["type"] for r in prediction["result"])
    assert types == ["brushlabels", "polygonlabels"]
    polygon = next(r for r in prediction["result"] if r["type"] == "polygonlabels")
    for x, y in polygon["value"]["points"]:  # inside the gesture and its small margin
        assert 35 <= x <= 70 and 10 <= y <= 90
    assert polygon["value"]["polygonlabels"] == ["Person"]
    brush = next(r for r in prediction["result"] if r["type"] == "brushlabels")
    assert brush["value"]["format"] == "rle" and len(brush["value"]["rle"]) > 10
    with transaction(ctx.engine) as s:
        rows = s.exec(select(LineageRecord).where(LineageRecord.action == "ml.assisted")).all()
        assert len(rows) == 1 and json.loads(rows[0].payload)["parameters"]["tool"] == "grabcut"


def test_fit_learns_what_label_studio_holds_never_the_webhook_body(
    ctx: GatewayContext, released: Released, sources: SourceSet, tmp_path: Path
) -> None:
    held = HeldInLabelStudio()
    app = create_app(ml_settings(tmp_path), ctx=ctx, sources=sources, annotations=held)
    with TestClient(app) as client:
        _fit_flow(client, held, released, ctx)


def _fit_flow(
    client: TestClient, held: HeldInLabelStudio, released: Released, ctx: GatewayContext
) -> None:
    config = INTERACTIVE
    setup = {"project": "11.1700000000", "schema": config}
    before = client.post("/setup", json=setup, headers=auth()).json()["model_version"]
    task = released.task(PEOPLE, 31)
    predicted = client.post(
        "/predict",
        json={"tasks": [task], "project": "11.1700000000", "label_config": config},
        headers=auth(),
    ).json()["results"][0][0]["result"]
    boxes = [r for r in predicted if r["type"] == "rectanglelabels"]
    assert boxes, "the people detector finds someone on this photo"
    accepted = boxes[:1]  # the annotator keeps the best box and removes the others
    forged = client.post(
        "/webhook", json=_annotation_event(9, task, accepted, config), headers=auth()
    )
    assert forged.json()["result"]["calibrated"] is False  # Label Studio holds no annotation 9
    for annotation_id in (1, 2, 3):
        held.hold(annotation_id, task, accepted, project=11, config=config)
        # the body says "nothing drawn": fit reads Label Studio's copy instead
        event = _annotation_event(annotation_id, task, [], config)
        response = client.post("/webhook", json=event, headers=auth())
        assert response.status_code == 201 and response.json()["status"] == "ok"
    after = client.post("/setup", json=setup, headers=auth()).json()["model_version"]
    assert after != before and after.startswith(before) and ".p11.c" in after
    assert after in client.get("/versions?project=11", headers=auth()).json()["versions"]
    deleted = {
        "action": "ANNOTATIONS_DELETED",
        "annotations": [{"id": 1}, {"id": 2}, {"id": 3}],
        "project": {"id": 11, "label_config": config},
    }
    still_held = client.post("/webhook", json=deleted, headers=auth())
    assert still_held.json()["result"]["ignored"] == 3  # a forged deletion changes nothing
    assert client.post("/setup", json=setup, headers=auth()).json()["model_version"] == after
    held.annotations.clear()  # Label Studio deleted them: now the deletion is read back as 404
    assert client.post("/webhook", json=deleted, headers=auth()).status_code == 201
    reset = client.post("/setup", json=setup, headers=auth()).json()["model_version"]
    assert reset not in (before, after)
    with transaction(ctx.engine) as s:
        rows = s.exec(select(LineageRecord).where(LineageRecord.action == "ml.calibrated")).all()
        payloads = [json.loads(r.payload) for r in rows]
    assert len(payloads) == 3 and payloads[-1]["outputs"]["revision"] >= 1


def _annotation_event(
    annotation_id: int, task: dict[str, Any], result: list[dict[str, Any]], config: str
) -> dict[str, Any]:
    return {
        "action": "ANNOTATION_CREATED",
        "annotation": {"id": annotation_id, "result": result, "was_cancelled": False},
        "task": task,
        "project": {"id": 11, "label_config": config},
    }


def test_persons_and_vehicles_sources_find_them_on_the_photos(sources: SourceSet) -> None:
    from tests.conftest import PHOTOS

    by_name = {s.name: s for s in sources.sources}
    crowd = by_name["persons"].detect(cv2.imread(str(PHOTOS / PEOPLE)))
    assert sum(d.score >= 0.4 for d in crowd) >= 5  # a crowd of a dozen walkers
    assert {d.model_class for d in crowd} == {"person"} and {d.source for d in crowd} == {"persons"}
    street = by_name["vehicles"].detect(cv2.imread(str(PHOTOS / PLATE)))
    assert any(d.model_class == "car" and d.score >= 0.4 for d in street)
    assert by_name["vehicles"].model_id.startswith(by_name["persons"].model_id + "+ssd-oidv4:")
    assert by_name["persons"].model is by_name["vehicles"].model  # one shared NanoDet run


def test_tasks_past_the_time_budget_get_no_prediction(
    ctx: GatewayContext, released: Released, sources: SourceSet, tmp_path: Path
) -> None:
    from dataclasses import replace

    from ml_backend.app import build_prelabeller

    ticks = iter(range(0, 1000, 10))  # every look at the clock: 10 s later
    settings = ml_settings(tmp_path, predict_budget_seconds=15)
    prelabeller = replace(
        build_prelabeller(settings, ctx=ctx, sources=sources), clock=lambda: float(next(ticks))
    )
    config = (
        "<View><Image name='image' value='$image'/><RectangleLabels name='box' toName='image'>"
        "<Label value='person'/></RectangleLabels></View>"
    )
    tasks = [released.task(PEOPLE, 1), released.task(PEOPLE, 2), released.task(PEOPLE, 3)]
    results = prelabeller.predict(tasks, project="3", label_config=config, context=None)
    assert [len(r) for r in results] == [1, 0, 0]
