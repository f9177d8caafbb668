"""Persons and vehicles (NanoDet-m, whole image + tiles) and person outlines from boxes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from fastapi.testclient import TestClient

from gateway.core.context import GatewayContext
from ml_backend.app import create_app
from ml_backend.detections import Detection
from ml_backend.masks import with_outlines
from ml_backend.settings import DEFAULT_SOURCES, MLBackendSettings
from ml_backend.sources.loading import load_sources
from ml_backend.sources.nanodet import REG_BINS, View, gfl_distances, views
from tests.ml_backend.conftest import PEOPLE, PLATE, Released, auth, ml_settings

STREET_CONFIG = """
<View>
  <Image name="image" value="$image"/>
  <RectangleLabels name="box" toName="image">
    <Label value="Person"/><Label value="Vehicle"/>
  </RectangleLabels>
  <PolygonLabels name="outline" toName="image"><Label value="Person"/></PolygonLabels>
</View>"""


def test_views_are_the_image_then_square_tiles_along_the_long_side() -> None:
    assert views(1280, 720) == [View(0, 0, 1280, 720), View(0, 0, 720, 720), View(560, 0, 720, 720)]
    assert views(301, 400)[1:] == [View(0, 0, 301, 301), View(0, 99, 301, 301)]
    assert len(views(400, 400)) == 5  # about square: four overlapping quarters
    assert views(120, 90) == [View(0, 0, 120, 90)]  # too small to tile
    assert views(1280, 720, tiles=False) == [View(0, 0, 1280, 720)]


def test_gfl_distances_are_the_expected_bin() -> None:
    reg = np.full((1, 4 * REG_BINS), -50.0, dtype=np.float32)
    for side, b in enumerate((0, 3, 7, 10)):
        reg[0, side * REG_BINS + b] = 50.0
    assert gfl_distances(reg)[0] == pytest.approx([0, 3, 7, 10], abs=1e-4)


def test_person_boxes_get_outlines_other_classes_keep_boxes() -> None:
    image = np.full((200, 200, 3), 235, dtype=np.uint8)
    cv2.ellipse(image, (100, 110), (30, 70), 0, 0, 360, (40, 60, 90), -1)  # a standing figure
    person = Detection("person", 50, 20, 100, 170, 0.9, "persons")
    car = Detection("car", 50, 20, 100, 170, 0.9, "vehicles")
    faint = Detection("person", 50, 20, 100, 170, 0.1, "persons")
    out = with_outlines(image, [person, car, faint], wanted=lambda d: d.score >= 0.4)
    assert out[1] is car and out[2] is faint
    points = np.asarray(out[0].outline)
    assert len(points) > 4
    area = cv2.contourArea(points.astype(np.float32))
    assert 0.6 * np.pi * 30 * 70 < area < 1.3 * np.pi * 30 * 70  # the figure, not the box


@pytest.mark.db
@pytest.mark.integration
def test_predict_with_the_default_sources_labels_persons_and_vehicles(
    ctx: GatewayContext, released: Released, tmp_path: Path
) -> None:
    settings = ml_settings(tmp_path, sources=DEFAULT_SOURCES)
    assert MLBackendSettings().sources == DEFAULT_SOURCES == ("persons", "vehicles")
    sources = load_sources(settings)
    assert [s.name for s in sources.sources] == ["persons", "vehicles"]
    with TestClient(create_app(settings, ctx=ctx, sources=sources)) as client:
        body = {
            "tasks": [released.task(PEOPLE, 1), released.task(PLATE, 2)],
            "project": "8.1700000000",
            "label_config": STREET_CONFIG,
        }
        response = client.post("/predict", json=body, headers=auth())
        assert response.status_code == 200
        assert set(client.get("/health", headers=auth()).json()["sources"]) == {
            "persons",
            "vehicles",
        }
    crowd, street = (r[0]["result"] for r in response.json()["results"])

    def labels(results: list[dict[str, Any]], kind: str) -> list[str]:
        return [r["value"][kind][0] for r in results if r["type"] == kind]

    assert labels(crowd, "rectanglelabels").count("Person") >= 5
    assert len(labels(crowd, "polygonlabels")) == labels(crowd, "rectanglelabels").count("Person")
    assert "Vehicle" in labels(street, "rectanglelabels")
    least = {"Person": sources.threshold_for("person"), "Vehicle": sources.threshold_for("car")}
    for r in crowd + street:  # each box over its own source's threshold (0.42 / 0.36)
        assert r["score"] >= least[r["value"][r["type"]][0]]


@pytest.mark.integration
def test_degenerate_images_give_no_detections_and_no_error() -> None:
    from ml_backend.sources.nanodet import PersonSource, VehicleSource

    settings = MLBackendSettings()
    persons, vehicles = PersonSource(settings), VehicleSource(settings)
    for shape in [(1, 1, 3), (10, 10, 3), (5000, 40, 3), (720, 1280, 3)]:
        blank = np.zeros(shape, dtype=np.uint8)
        assert persons.detect(blank) == [] and vehicles.detect(blank) == []
