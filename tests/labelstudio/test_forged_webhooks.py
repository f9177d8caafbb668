"""Webhooks are hints: forged ones, sent with the right secret, store, withdraw and delete
nothing Label Studio does not confirm (the real server answers the read-back). The secret is
checked before the body is read, and bodies are bounded."""

from __future__ import annotations

from typing import Any

import httpx
from sqlmodel import select

from gateway.core.db import transaction
from gateway.core.models import Asset, AssetState, AssetSync, SyncState
from gateway.http_limits import WEBHOOK_BODY_LIMIT
from gateway.labelstudio.config import PRIVACY_FLAG_NAME
from gateway.labelstudio.destinations import open_secrets
from gateway.labelstudio.sync import sync_dataset
from gateway.labelstudio.tables import AnnotationFailure, Incident
from tests.labelstudio.fixtures import ADMIN
from tests.labelstudio.helpers import lineage, project_tasks, sdk
from tests.labelstudio.test_annotations_as_labelstudio_holds_them import (
    EDITOR_BOX,
    FLAG,
    stored,
    wait_until,
)


def _post(gateway_server: str, ctx, destination, body: Any, **kw: Any) -> httpx.Response:
    secret = open_secrets(ctx, destination).webhook_secret
    return httpx.post(
        f"{gateway_server}/v1/webhooks/labelstudio/{destination.id}",
        headers={"X-Gateway-Webhook-Secret": secret, **kw.pop("headers", {})},
        json=body,
        **kw,
    )


def _failures(ctx, ls_id: int) -> list[AnnotationFailure]:
    with transaction(ctx.engine) as s:
        return list(
            s.exec(select(AnnotationFailure).where(AnnotationFailure.ls_annotation_id == ls_id))
        )


def _created(task: dict[str, Any], ls_id: int, result: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "action": "ANNOTATION_CREATED",
        "annotation": {
            "id": ls_id,
            "task": task["id"],
            "result": result,
            "completed_by": 1,
            "created_username": "someone@example.org",
        },
        "task": {"id": task["id"], "data": task["data"]},
        "project": {"id": task["project"]},
    }


def _sync(ctx, dataset, destination, labelstudio) -> list[dict[str, Any]]:
    report = sync_dataset(
        ctx, dataset_ref=dataset.name, destination_ref=destination.name, actor=ADMIN
    )
    return project_tasks(labelstudio, report.project_id)


def test_an_invented_annotation_is_not_stored(
    ctx, dataset, released, destination, labelstudio, gateway_server
) -> None:
    task = _sync(ctx, dataset, destination, labelstudio)[0]
    answer = _post(gateway_server, ctx, destination, _created(task, 987654, [EDITOR_BOX]))
    assert answer.status_code == 200 and answer.json()["accepted"] == [987654]
    (failure,) = wait_until(lambda: _failures(ctx, 987654))
    assert failure.code == "labelstudio-does-not-confirm" and failure.resolved_at is None
    assert "someone@example.org" not in failure.reason  # nothing of the payload is kept
    assert stored(ctx, 987654) is None and lineage(ctx, "annotation.received") == []
    from gateway.labelstudio.annotations import pull_annotations

    pulled = pull_annotations(ctx, destination, actor=ADMIN)  # picks the event up again
    assert pulled.failed == {} and stored(ctx, 987654) is None
    (failure,) = _failures(ctx, 987654)
    assert failure.resolution == "absent-in-labelstudio"


def test_an_invented_flag_withdraws_and_opens_nothing(
    ctx, dataset, released, destination, labelstudio, gateway_server
) -> None:
    tasks = _sync(ctx, dataset, destination, labelstudio)
    invented, relabelled = tasks[0], tasks[1]
    with sdk(labelstudio) as client:  # a real annotation, without a flag
        real = client.annotations.create(relabelled["id"], result=[EDITOR_BOX])
    wait_until(lambda: stored(ctx, real.id))
    for task, ls_id in ((invented, 987655), (relabelled, real.id)):
        answer = _post(gateway_server, ctx, destination, _created(task, ls_id, [EDITOR_BOX, FLAG]))
        assert answer.status_code == 200
        # the safe direction may happen at once: the image stops being served
        assert answer.json()["quarantined"] == [task["data"]["gateway_asset_id"]]
        wait_until(lambda ls_id=ls_id: [f for f in _failures(ctx, ls_id) if f.code])
    with transaction(ctx.engine) as s:
        assert s.exec(select(Incident)).all() == []
        for task in (invented, relabelled):
            asset = s.get(Asset, task["data"]["gateway_asset_id"])
            assert asset.state == AssetState.QUARANTINED
            assert asset.reasons[-1]["code"] == "annotator-leak-flag"
            assert "read back from Label Studio" in asset.reasons[-1]["message"]
            sync = s.get(AssetSync, (asset.id, destination.id))
            assert sync.state == SyncState.SYNCED  # not withdrawn
    for task in (invented, relabelled):  # both tasks are still in Label Studio
        assert _status(labelstudio, task["id"]) == 200
    assert stored(ctx, 987655) is None
    kept = stored(ctx, real.id).result  # what Label Studio holds, not what the hint said
    assert _no_flag(kept) and kept[0]["value"] == EDITOR_BOX["value"]
    assert [f.resolution for f in _failures(ctx, real.id)] == ["not-confirmed"]


def _no_flag(result: list[dict[str, Any]]) -> bool:
    return all(r["from_name"] != PRIVACY_FLAG_NAME for r in result)


def _status(labelstudio, task_id: int) -> int:
    return httpx.get(
        f"{labelstudio.url}/api/tasks/{task_id}",
        headers={"Authorization": f"Token {labelstudio.token}"},
    ).status_code


def test_an_invented_deletion_deletes_nothing_label_studio_still_holds(
    ctx, dataset, released, destination, labelstudio, gateway_server
) -> None:
    task = _sync(ctx, dataset, destination, labelstudio)[0]
    with sdk(labelstudio) as client:
        real = client.annotations.create(task["id"], result=[EDITOR_BOX])
    wait_until(lambda: stored(ctx, real.id))
    forged = {"action": "ANNOTATIONS_DELETED", "annotations": [{"id": real.id}]}
    assert _post(gateway_server, ctx, destination, forged).status_code == 200
    (failure,) = wait_until(lambda: _failures(ctx, real.id))
    assert (failure.code, failure.resolution) == ("labelstudio-does-not-confirm", "ignored")
    assert stored(ctx, real.id).deleted_at is None
    assert lineage(ctx, "annotation.deleted") == []
    with sdk(labelstudio) as client:  # a real deletion is read back as 404, then recorded
        client.annotations.delete(real.id)
    wait_until(lambda: stored(ctx, real.id).deleted_at is not None)
    assert len(lineage(ctx, "annotation.deleted")) == 1


def test_the_secret_is_checked_before_the_body_and_bodies_are_bounded(
    ctx, destination, gateway_server
) -> None:
    url = f"{gateway_server}/v1/webhooks/labelstudio/{destination.id}"
    not_json = httpx.post(url, content=b"{not json", headers={"X-Gateway-Webhook-Secret": "no"})
    assert not_json.status_code == 401  # the body was never parsed
    secret = {"X-Gateway-Webhook-Secret": open_secrets(ctx, destination).webhook_secret}
    assert httpx.post(url, content=b"{not json", headers=secret).status_code == 422
    huge = httpx.post(url, content=b" " * (WEBHOOK_BODY_LIMIT + 1), headers=secret)
    assert huge.status_code == 413 and huge.json()["code"] == "payload-too-large"
