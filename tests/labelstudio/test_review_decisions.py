"""Review decisions on the real Label Studio, read back by task id (no browser): a flagged
asset is boxed and released (re-rendered by the real engine, its incident closed with the
outcome, sent back to the annotation project); a sampled asset whose original retention
already deleted cannot be released, only rejected, and the rejection withdraws it."""

from __future__ import annotations

import time

import httpx
from sqlmodel import select

from gateway.asset_states import record_original_deleted
from gateway.core.db import transaction
from gateway.core.models import Asset, AssetState, AssetSync, Role, SyncState
from gateway.labelstudio.config import PRIVACY_FLAG_NAME
from gateway.labelstudio.sync import sync_dataset
from gateway.labelstudio.tables import Incident
from gateway.policy.derived import delete_blob
from gateway.policy.tables import LegalHold
from gateway.review.models import ReviewItem
from gateway.review.outcomes import review_outcomes
from gateway.review.project import add_reviewer, push_review_tasks, set_review_destination
from gateway.review.queue import enqueue_for_review
from gateway.review.schedule import ReviewPuller
from tests.gateway.test_api import make_key
from tests.labelstudio.fixtures import ADMIN, FAST_RETRY, PHOTO_NAMES, release_photos
from tests.labelstudio.helpers import lineage, project_tasks, sdk


def _decision(value: str, *boxes: tuple[float, float, float, float]) -> list[dict]:
    drawn = [
        {
            "from_name": "missed",
            "to_name": "image",
            "type": "rectanglelabels",
            "value": {
                "x": x,
                "y": y,
                "width": w,
                "height": h,
                "rotation": 0,
                "rectanglelabels": ["face"],
            },
        }
        for x, y, w, h in boxes
    ]
    choice = {
        "from_name": "decision",
        "to_name": "image",
        "type": "choices",
        "value": {"choices": [value]},
    }
    return [*drawn, choice]


def _until(check, what: str, seconds: float = 60.0) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)  # polling the gateway's read-back, not timing anything


def _decided(ctx, asset_id: str) -> bool:
    with transaction(ctx.engine) as s:
        item = s.exec(select(ReviewItem).where(ReviewItem.asset_id == asset_id)).first()
        return item is not None and item.decided_at is not None


def _flag_settled(ctx, asset_id: str, destination_id: str) -> bool:
    with transaction(ctx.engine) as s:
        incident = s.exec(select(Incident).where(Incident.asset_id == asset_id)).first()
        sync = s.get(AssetSync, (asset_id, destination_id))
        return incident is not None and sync is not None and sync.state == SyncState.REMOVED


def test_flagged_release_and_reject_only_when_the_original_is_gone(
    ctx, dataset, session_redactor, destination, labelstudio
) -> None:
    released = release_photos(ctx, dataset, session_redactor, PHOTO_NAMES[2:4])
    with transaction(ctx.engine) as s:
        assert len(released) == 2, [(a.state, a.reasons) for a in s.exec(select(Asset)).all()]
    flagged, sampled = released
    annotate = sync_dataset(
        ctx, dataset_ref=dataset.id, destination_ref=destination.id, actor=ADMIN
    )
    tasks = {
        t["data"]["gateway_asset_id"]: t for t in project_tasks(labelstudio, annotate.project_id)
    }
    flag = {
        "from_name": PRIVACY_FLAG_NAME,
        "to_name": "image",
        "type": "choices",
        "value": {"choices": ["face visible"]},
    }
    with sdk(labelstudio) as client:
        client.annotations.create(tasks[flagged]["id"], result=[flag])
    # the webhook's read-back confirms the flag (a pull now would race it for the same row)
    _until(
        lambda: _flag_settled(ctx, flagged, destination.id), "the flag's incident and withdrawal"
    )
    with transaction(ctx.engine) as s:
        assert s.get(Asset, flagged).state == AssetState.QUARANTINED
        before = s.get(Asset, flagged).redacted_sha256
        gone = s.get(Asset, sampled)  # retention deleted its original meanwhile
        delete_blob(ctx, s, gone.original_blob, owner=gone.id)
        record_original_deleted(s, gone, actor=ADMIN, now=ctx.clock(), region="eu-de")
        set_review_destination(ctx, s, dataset.id, destination.id, actor=ADMIN)
        queued = enqueue_for_review(ctx, s, dataset.id, actor=ADMIN, rate="1")
        with sdk(labelstudio) as client:
            add_reviewer(ctx, s, dataset.id, user=int(client.users.whoami().id), actor=ADMIN)
    assert (queued.flagged, queued.sampled) == ([flagged], [sampled])
    pushed = push_review_tasks(ctx, dataset.id, actor=ADMIN, retry=FAST_RETRY)
    review = {
        t["data"]["gateway_asset_id"]: t for t in project_tasks(labelstudio, pushed.project_id)
    }
    # the quarantined copy is shown to reviewers through the review URL only, while it is open
    review_url = review[flagged]["data"]["image"]
    assert httpx.get(review_url).status_code == 200
    assert httpx.get(tasks[flagged]["data"]["image"]).status_code in (404, 410)
    forged = review_url[:-1] + ("0" if review_url[-1] != "0" else "1")
    assert httpx.get(forged).status_code == 404
    with sdk(labelstudio) as client:
        client.annotations.create(
            review[flagged]["id"], result=_decision("release", (5, 5, 20.5, 30.25))
        )
        client.annotations.create(review[sampled]["id"], result=_decision("release"))
    # each answer's webhook wakes the service's review pull, which reads it back by task id
    _until(lambda: _decided(ctx, flagged), "the flagged asset's review decided", seconds=90)
    _until(lambda: lineage(ctx, "review.decision_refused"), "the refused release recorded")
    with sdk(labelstudio) as client:
        client.annotations.create(review[sampled]["id"], result=_decision("reject"))
    _until(lambda: _decided(ctx, sampled), "the sampled asset's review decided")
    # a pull with nothing new does nothing (every answer is acted on once): the loop's, and
    # the one an API-only process triggers over HTTP
    puller = ReviewPuller(ctx, interval_seconds=60, redactor_factory=lambda: session_redactor)
    again = puller.run_once()[dataset.id]
    puller.close()
    assert (again.decided, again.ignored, again.refused) == ({}, [], {})
    admin = make_key(ctx, Role.ADMIN, label="review-pull", actor=ADMIN)
    triggered = httpx.post(
        f"{destination.gateway_url}/v1/datasets/{dataset.id}/review/pull",
        headers={"Authorization": f"Bearer {admin}"},
        timeout=60,
    )
    assert triggered.status_code == 200, triggered.text
    assert triggered.json() == {"decided": {}, "ignored": [], "refused": {}, "resynced": []}

    with transaction(ctx.engine) as s:
        released = s.get(Asset, flagged)
        assert released.state == AssetState.RELEASED and released.redacted_sha256 != before
        (incident,) = s.exec(select(Incident).where(Incident.asset_id == flagged)).all()
        assert incident.closed_at is not None and incident.details["outcome"] == "released"
        assert s.get(AssetSync, (flagged, destination.id)).state == SyncState.SYNCED
        assert s.get(Asset, sampled).state == AssetState.REJECTED
        assert s.get(AssetSync, (sampled, destination.id)).state == SyncState.REMOVED
        holds = s.exec(select(LegalHold)).all()
        assert len(holds) == 1 and holds[0].released_at is not None  # the flagged one's
        outcomes = {o.asset_id: o for o in review_outcomes(s, dataset.id)}
        assert s.exec(select(ReviewItem)).all()
    assert outcomes[sampled].decision == "rejected" and not outcomes[sampled].original_available
    assert outcomes[flagged].reason == "flagged" and outcomes[flagged].findings[0] == ("face", 1)
    assert httpx.get(review_url).status_code == 404  # decided: the review URL is dead
    new_task = [
        t
        for t in project_tasks(labelstudio, annotate.project_id)
        if t["data"]["gateway_asset_id"] == flagged
    ]
    assert len(new_task) == 1 and httpx.get(new_task[0]["data"]["image"]).status_code == 200
    refused = lineage(ctx, "review.decision_refused")
    assert [r["parameters"]["requested"] for r in refused] == ["released"]
    assert [r["parameters"]["outcome"] for r in lineage(ctx, "incident.closed")] == ["released"]
