"""Annotations as Label Studio's editor writes them: fractional percentages are stored exactly
as Label Studio holds them (webhook and pull), and a flag ticked beside a box works."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx
from sqlmodel import select

from gateway.core.db import transaction
from gateway.core.models import Asset, AssetState
from gateway.labelstudio.annotations import pull_annotations
from gateway.labelstudio.config import PRIVACY_FLAG_NAME
from gateway.labelstudio.result_digest import result_sha256
from gateway.labelstudio.sync import sync_dataset
from gateway.labelstudio.tables import Annotation, Incident
from tests.labelstudio.fixtures import ADMIN
from tests.labelstudio.helpers import lineage, project_tasks, sdk

# what Label Studio's editor writes for a box drawn with the mouse on a 650x433 image
EDITOR_BOX: dict[str, Any] = {
    "id": "uPjzP1Wj3K",
    "from_name": "boxes",
    "to_name": "image",
    "type": "rectanglelabels",
    "origin": "manual",
    "original_width": 650,
    "original_height": 433,
    "image_rotation": 0,
    "value": {
        "x": 30.769230769230766,
        "y": 12.009237875288683,
        "width": 21.846153846153847,
        "height": 33.71824480369515,
        "rotation": 0,
        "rectanglelabels": ["person"],
    },
}
FLAG: dict[str, Any] = {
    "id": "Fl4g0000",
    "from_name": PRIVACY_FLAG_NAME,
    "to_name": "image",
    "type": "choices",
    "origin": "manual",
    "value": {"choices": ["face visible"]},
}


def wait_until(check: Callable[[], Any], seconds: float = 30.0) -> Any:
    deadline = time.monotonic() + seconds
    while not (found := check()):
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.05)  # the read-back runs after the webhook's answer: poll, time nothing
    return found


def stored(ctx, ls_id: int) -> Annotation | None:
    with transaction(ctx.engine) as s:
        return s.exec(select(Annotation).where(Annotation.ls_annotation_id == ls_id)).first()


def label_studio_annotation(labelstudio, ls_id: int) -> dict[str, Any]:
    response = httpx.get(
        f"{labelstudio.url}/api/annotations/{ls_id}",
        headers={"Authorization": f"Token {labelstudio.token}"},
    )
    response.raise_for_status()
    body: dict[str, Any] = response.json()
    return body


def test_fractional_coordinates_are_stored_as_label_studio_holds_them(
    ctx, dataset, released, destination, labelstudio
) -> None:
    report = sync_dataset(
        ctx, dataset_ref=dataset.name, destination_ref=destination.name, actor=ADMIN
    )
    task = project_tasks(labelstudio, report.project_id)[0]
    with sdk(labelstudio) as client:
        made = client.annotations.create(task["id"], result=[EDITOR_BOX])
    row = wait_until(lambda: stored(ctx, made.id))
    held = label_studio_annotation(labelstudio, made.id)["result"]
    assert row.result == held  # every field and every digit Label Studio holds
    assert row.result[0]["value"]["x"] == 30.769230769230766
    received = lineage(ctx, "annotation.received")
    assert [r["outputs"]["result_sha256"] for r in received] == [result_sha256(held)]

    with transaction(ctx.engine) as s:  # as if the webhook had been lost: the pull stores it
        s.delete(s.get(Annotation, row.id))
    pulled = pull_annotations(ctx, destination, actor=ADMIN)
    assert pulled.stored == 1 and stored(ctx, made.id).result == held


def test_a_flag_ticked_beside_a_box_withdraws_the_task(
    ctx, dataset, released, destination, labelstudio
) -> None:
    report = sync_dataset(
        ctx, dataset_ref=dataset.name, destination_ref=destination.name, actor=ADMIN
    )
    task = project_tasks(labelstudio, report.project_id)[1]
    asset_id = task["data"]["gateway_asset_id"]
    with sdk(labelstudio) as client:
        made = client.annotations.create(task["id"], result=[EDITOR_BOX, FLAG])
    wait_until(lambda: _incident(ctx, asset_id))
    with transaction(ctx.engine) as s:
        assert s.get(Asset, asset_id).state == AssetState.QUARANTINED
    gone = wait_until(lambda: _task_status(labelstudio, task["id"]) == 404)
    assert gone
    kept = stored(ctx, made.id)  # the flagging annotation itself is kept, box and all
    assert kept is not None and kept.result[0]["value"]["x"] == EDITOR_BOX["value"]["x"]
    assert kept.result[1]["value"]["choices"] == ["face visible"]


def _incident(ctx, asset_id: str) -> Incident | None:
    with transaction(ctx.engine) as s:
        return s.exec(select(Incident).where(Incident.asset_id == asset_id)).first()


def _task_status(labelstudio, task_id: int) -> int:
    return httpx.get(
        f"{labelstudio.url}/api/tasks/{task_id}",
        headers={"Authorization": f"Token {labelstudio.token}"},
    ).status_code
