"""The pull never stops at one bad annotation (it reports each failure, records it, and goes
on), and withdrawing a task from Label Studio stores its annotations first."""

from __future__ import annotations

import httpx
from sqlmodel import select

from gateway.core.db import transaction
from gateway.labelstudio.annotations import pull_annotations
from gateway.labelstudio.removal import remove_asset_tasks
from gateway.labelstudio.sync import sync_dataset
from gateway.labelstudio.tables import AnnotationFailure, LabelStudioProject
from tests.labelstudio.fixtures import ADMIN
from tests.labelstudio.helpers import lineage, project_tasks, sdk
from tests.labelstudio.test_annotations_as_labelstudio_holds_them import EDITOR_BOX, stored
from tests.labelstudio.test_cli_and_ontology import _cli


def _without_webhooks(ctx, destination, labelstudio, dataset):
    report = sync_dataset(
        ctx, dataset_ref=dataset.name, destination_ref=destination.name, actor=ADMIN
    )
    with transaction(ctx.engine) as s:
        project = s.exec(
            select(LabelStudioProject).where(LabelStudioProject.destination_id == destination.id)
        ).one()
    with sdk(labelstudio) as client:
        client.webhooks.delete(project.webhook_id)  # every webhook from now on is lost
    return project_tasks(labelstudio, report.project_id)


def test_one_bad_annotation_does_not_stop_the_pull(
    ctx, dataset, released, destination, labelstudio
) -> None:
    tasks = _without_webhooks(ctx, destination, labelstudio, dataset)
    made = []
    with sdk(labelstudio) as client:
        for task in tasks[:3]:
            made.append(client.annotations.create(task["id"], result=[EDITOR_BOX]).id)
        # someone with Label Studio access points the first task at another asset
        client.tasks.update(str(tasks[0]["id"]), data={**tasks[0]["data"], "gateway_asset_id": "x"})
    pulled = pull_annotations(ctx, destination, actor=ADMIN)
    assert pulled.failed == {made[0]: "annotation-unusable"}
    assert pulled.stored == 2 and pulled.tasks == len(tasks)
    assert stored(ctx, made[0]) is None
    assert [stored(ctx, i).result[0]["value"]["x"] for i in made[1:]] == [30.769230769230766] * 2
    with transaction(ctx.engine) as s:
        (failure,) = s.exec(select(AnnotationFailure)).all()
    assert (failure.ls_annotation_id, failure.resolved_at, failure.attempts) == (made[0], None, 1)
    again = _cli(ctx, "annotations", "pull", "--from", destination.name)  # still failing
    assert again.returncode == 5, again.stderr
    assert f"failed: annotation {made[0]} (annotation-unusable)" in again.stderr
    assert "2 annotations stored" in again.stdout and "1 failed" in again.stdout
    with transaction(ctx.engine) as s:
        assert [f.attempts for f in s.exec(select(AnnotationFailure)).all()] == [2]  # not copied
    with sdk(labelstudio) as client:  # put right: the next pull stores it and resolves the event
        client.tasks.update(str(tasks[0]["id"]), data=tasks[0]["data"])
    assert pull_annotations(ctx, destination, actor=ADMIN).failed == {}
    assert stored(ctx, made[0]) is not None
    with transaction(ctx.engine) as s:
        assert [f.resolution for f in s.exec(select(AnnotationFailure)).all()] == ["stored"]


def test_withdrawing_a_task_stores_its_annotations_first(
    ctx, dataset, released, destination, labelstudio
) -> None:
    tasks = _without_webhooks(ctx, destination, labelstudio, dataset)
    task = tasks[0]
    with sdk(labelstudio) as client:
        made = client.annotations.create(task["id"], result=[EDITOR_BOX])
    assert stored(ctx, made.id) is None  # the webhook was lost
    with transaction(ctx.engine) as s:
        results = remove_asset_tasks(ctx, s, task["data"]["gateway_asset_id"], "erasure")
    assert [r["state"] for r in results] == ["removed"]
    gone = httpx.get(
        f"{labelstudio.url}/api/tasks/{task['id']}",
        headers={"Authorization": f"Token {labelstudio.token}"},
    )
    assert gone.status_code == 404
    kept = stored(ctx, made.id)
    assert kept is not None and kept.result[0]["value"] == EDITOR_BOX["value"]
    (record,) = lineage(ctx, "annotation.received")
    assert record["actor"]["id"] == "labelstudio-removal"
