"""The annotation loop as an annotator really does it, in Label Studio's editor in headless
Chromium: draw a rectangle and a polygon with the mouse, accept a pre-label, tick the privacy
flag on another task that also gets a box, submit each. Then the gateway holds the annotations
with Label Studio's own (fractional) coordinates, the flagged task is withdrawn and its image
URL stops answering, the COCO export equals label-studio-sdk's converter on Label Studio's own
export of the same annotations, and the governance report counts what Label Studio holds.

The pre-label is a Label Studio prediction made through its predictions API, shaped as the
gateway's ML backend answers (tests/labelstudio/test_ml_backend_connection.py connects the
real backend); the editor loads it as the annotator's starting point and Submit accepts it.
Screenshots of each step go to $GATEWAY_EDITOR_SCREENSHOTS when set (a manual walk)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import httpx
import pytest
from label_studio_sdk.converter import Converter
from sqlmodel import col, select

from gateway.core.db import transaction
from gateway.core.models import Asset, AssetState, AssetSync, Dataset, SyncState
from gateway.datasets import DatasetSpec, Ontology, create_dataset
from gateway.labelstudio.config import FLAG_RECEIVED, label_config
from gateway.labelstudio.export import ExportFormat, export_annotations
from gateway.labelstudio.sync import sync_dataset
from gateway.labelstudio.tables import Annotation
from gateway.reports.build import generate_dataset_report
from tests.conftest import DATASET_SPEC
from tests.labelstudio.editor import CHROMIUM, DRIVER, Editor, browser, until
from tests.labelstudio.export_compare import close, coco_shapes
from tests.labelstudio.fixtures import ADMIN, PHOTO_NAMES, release_photos

pytestmark = pytest.mark.skipif(
    CHROMIUM is None or DRIVER is None,
    reason="needs Debian's chromium and chromium-driver (scripts/setup.sh installs them)",
)
ONTOLOGY = {
    "labels": [{"name": "person", "control": "box"}, {"name": "road", "control": "polygon"}]
}
MODEL_VERSION = "lpg-prelabel-test"


def _prelabel(asset: Asset) -> list[dict[str, Any]]:
    """A box as the ML backend returns it: percentages with all their decimals."""
    value = {"x": 12.345678901234567, "y": 20.2, "width": 30.30303030303, "height": 40.123}
    return [
        {
            "id": "prelabel-1",
            "from_name": "boxes",
            "to_name": "image",
            "type": "rectanglelabels",
            "original_width": asset.width,
            "original_height": asset.height,
            "image_rotation": 0,
            "value": {**value, "rotation": 0, "rectanglelabels": ["person"]},
        }
    ]


@pytest.fixture
def street(ctx, session_redactor) -> tuple[Dataset, list[str]]:
    spec = DatasetSpec.model_validate({**DATASET_SPEC, "ontology": ONTOLOGY})
    with transaction(ctx.engine) as s:
        made = create_dataset(s, ctx, spec, actor=ADMIN)
    return made, release_photos(ctx, made, session_redactor, PHOTO_NAMES[:3])


@pytest.mark.timeout(420)
def test_an_annotator_draws_accepts_and_flags_in_the_editor(
    ctx, street, destination, labelstudio, tmp_path
) -> None:
    dataset, released = street
    assert len(released) == 3
    project = sync_dataset(
        ctx, dataset_ref=dataset.name, destination_ref=destination.name, actor=ADMIN
    ).project_id
    ls = _LabelStudio(labelstudio, project)
    drawn, prelabelled, flagged = ls.tasks()
    with transaction(ctx.engine) as s:
        prelabel = _prelabel(s.get(Asset, prelabelled["data"]["gateway_asset_id"]))
    ls.predict(prelabelled["id"], prelabel)

    shots = Path(os.environ.get("GATEWAY_EDITOR_SCREENSHOTS") or tmp_path / "shots")
    driver = browser(tmp_path / "profile")
    try:
        editor = Editor(driver, labelstudio.url, project)
        editor.login(labelstudio.username, labelstudio.password)
        editor.open(drawn["id"])
        editor.pick_label("person")
        editor.drag((0.37, 0.21), (0.61, 0.77))
        editor.pick_label("road")
        editor.click_polygon([(0.05, 0.80), (0.30, 0.75), (0.33, 0.97), (0.07, 0.95)])
        editor.screenshot(shots / "1-rectangle-and-polygon.png")
        editor.submit()
        until(lambda: ls.annotations(drawn["id"]), "the drawn annotation in Label Studio")

        editor.open(prelabelled["id"])
        editor.screenshot(shots / "2-prelabel-shown.png")
        editor.submit()  # accepted as shown
        until(lambda: ls.annotations(prelabelled["id"]), "the accepted pre-label")

        editor.open(flagged["id"])
        editor.pick_label("person")
        editor.drag((0.2, 0.2), (0.5, 0.6))
        assert FLAG_RECEIVED not in editor.body()
        editor.tick("face visible")
        assert FLAG_RECEIVED in editor.body()  # the editor says what Submit will do
        editor.screenshot(shots / "3-flag-ticked.png")
        editor.submit()
        until(lambda: ls.gone(flagged["id"]), "the flagged task withdrawn", seconds=90)
        editor.screenshot(shots / "4-after-flag-submit.png")
    finally:
        driver.quit()

    (made,), (accepted,) = ls.annotations(drawn["id"]), ls.annotations(prelabelled["id"])
    stored = _the_gateway_holds(ctx, {drawn["id"]: made, prelabelled["id"]: accepted})
    assert sorted(r["type"] for r in stored[made["id"]].result) == [
        "polygonlabels",
        "rectanglelabels",
    ]
    assert [r["value"] for r in accepted["result"]] == [r["value"] for r in prelabel]
    assert [r["origin"] for r in accepted["result"]] == ["prediction"]  # accepted as shown
    _the_flagged_task_is_withdrawn(ctx, flagged, destination)
    _coco_equals_the_converter(ctx, dataset, ls, tmp_path)
    # the report counts as Label Studio does (submitted, not cancelled), plus the work kept from
    # tasks withdrawn from it: here the flagging annotation (as the whole-flow report test)
    quality = generate_dataset_report(ctx, dataset.name, actor=ADMIN).report.annotation_quality
    assert quality is not None
    project_total = ls.get(f"/api/projects/{project}")["total_annotations_number"]
    # the report's count of annotations on tasks still in Label Studio is Label Studio's own;
    # the flagging annotation, kept when its task was withdrawn, is counted apart
    assert quality.in_label_studio == ls.annotation_count() == project_total == 2
    assert quality.kept_from_withdrawn_tasks == _kept_withdrawn(ctx) == 1
    assert quality.annotations == 3


class _LabelStudio:
    """Label Studio's REST API, read with the admin token (what Label Studio holds)."""

    def __init__(self, server: Any, project: int) -> None:
        self.url, self.project = server.url, project
        self.headers = {"Authorization": f"Token {server.token}"}

    def get(self, path: str, **params: Any) -> Any:
        answer = httpx.get(f"{self.url}{path}", params=params, headers=self.headers, timeout=60)
        answer.raise_for_status()
        return answer.json()

    def tasks(self) -> list[dict[str, Any]]:
        body = self.get("/api/tasks", project=self.project, page_size=100, fields="all")
        return sorted(body["tasks"], key=lambda t: t["id"])

    def predict(self, task_id: int, result: list[dict[str, Any]]) -> None:
        httpx.post(
            f"{self.url}/api/predictions/",
            json={"task": task_id, "result": result, "score": 0.9, "model_version": MODEL_VERSION},
            headers=self.headers,
        ).raise_for_status()

    def annotations(self, task_id: int) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = self.get(f"/api/tasks/{task_id}/annotations")
        return found

    def gone(self, task_id: int) -> bool:
        return httpx.get(f"{self.url}/api/tasks/{task_id}", headers=self.headers).status_code == 404

    def annotation_count(self) -> int:
        return sum(len(self.annotations(t["id"])) for t in self.tasks())

    def export(self) -> list[dict[str, Any]]:
        exported: list[dict[str, Any]] = self.get(
            f"/api/projects/{self.project}/export", exportType="JSON", download_all_tasks="true"
        )
        return exported


def _kept_withdrawn(ctx) -> int:
    """Annotations the gateway keeps from tasks withdrawn from Label Studio."""
    with transaction(ctx.engine) as s:
        rows = s.exec(
            select(Annotation)
            .join(AssetSync, col(AssetSync.asset_id) == col(Annotation.asset_id))
            .where(col(AssetSync.state) == SyncState.REMOVED, col(Annotation.deleted_at).is_(None))
        ).all()
        return len(rows)


def _stored(ctx) -> dict[int, Annotation]:
    with transaction(ctx.engine) as s:
        rows = s.exec(select(Annotation).where(col(Annotation.deleted_at).is_(None))).all()
        return {r.ls_annotation_id: r for r in rows}


def _the_gateway_holds(ctx, by_task: dict[int, dict[str, Any]]) -> dict[int, Annotation]:
    """The gateway's rows for Label Studio's annotations, once the read-backs are stored."""
    wanted = {a["id"] for a in by_task.values()}

    def all_stored() -> dict[int, Annotation] | None:
        rows = _stored(ctx)
        return rows if wanted <= rows.keys() else None

    stored: dict[int, Annotation] = until(all_stored, "the read-backs")
    for task_id, annotation in by_task.items():
        row = stored[annotation["id"]]
        assert row.result == annotation["result"]  # every decimal as Label Studio holds it
        assert row.task_id == task_id
    fractional = [v for a in by_task.values() for r in a["result"] for v in _numbers(r["value"])]
    assert fractional and not all(float(v).is_integer() for v in fractional)
    return stored


def _numbers(value: dict[str, Any]) -> list[float]:
    points = [c for point in value.get("points") or [] for c in point]
    return [v for k, v in value.items() if k in ("x", "y", "width", "height")] + points


def _the_flagged_task_is_withdrawn(ctx, flagged, destination) -> None:
    asset_id = flagged["data"]["gateway_asset_id"]
    with transaction(ctx.engine) as s:
        assert s.get(Asset, asset_id).state == AssetState.QUARANTINED
        assert s.get(AssetSync, (asset_id, destination.id)).state == SyncState.REMOVED
        kept = s.exec(select(Annotation).where(Annotation.asset_id == asset_id)).all()
    assert len(kept) == 1  # the flagging annotation itself is kept
    assert httpx.get(flagged["data"]["image"]).status_code in (404, 410)


def _coco_equals_the_converter(ctx, dataset, ls, tmp_path: Path) -> None:
    with transaction(ctx.engine) as s:
        ours = export_annotations(
            ctx, s, dataset_ref=dataset.name, fmt=ExportFormat.COCO, actor=ADMIN
        )
        ontology = s.get(Dataset, dataset.id).ontology
    source = tmp_path / "labelstudio-export.json"
    source.write_text(json.dumps(ls.export()))
    converter = Converter(
        label_config(Ontology.model_validate(ontology)), str(tmp_path), download_resources=False
    )
    converter.convert(str(source), str(tmp_path / "sdk"), "COCO", is_dir=False)
    theirs = coco_shapes(json.loads((tmp_path / "sdk" / "result.json").read_text()))
    mine = coco_shapes(json.loads(ours.files["annotations.json"]))
    assert len(mine) == len(theirs) == 3  # a rectangle and a polygon, the accepted box
    for a, b in zip(mine, theirs, strict=True):
        assert close(list(a[:4]), list(b[:4])), (a, b)
