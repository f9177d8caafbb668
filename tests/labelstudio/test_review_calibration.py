"""Calibration on the real Label Studio: `open_calibration` queues the seeded batch, the review
project serves each calibration image through a signed review URL, the reviewer's answers
(posted through Label Studio's API as the reviewer user) are read back by the review loop's
pull, measured and never acted on, and the governance report states the reviewer recall."""

from __future__ import annotations

import json
import time

import httpx
from sqlmodel import select

from gateway.core.db import transaction
from gateway.core.models import Asset, AssetState
from gateway.datasets import DatasetSpec, create_dataset
from gateway.reports.build import generate_dataset_report
from gateway.reports.calibration import build_batch
from gateway.reports.render import ReportFormat, render
from gateway.review.calibration import open_calibration
from gateway.review.decide import pull_decisions
from gateway.review.models import ReviewItem
from gateway.review.project import add_reviewer, push_review_tasks, set_review_destination
from tests.conftest import DATASET_SPEC
from tests.labelstudio.fixtures import ADMIN
from tests.labelstudio.helpers import project_tasks

SEED = 5


def _headers(server) -> dict[str, str]:
    return {"Authorization": f"Token {server.token}"}


def _answer(server, task_id: int, boxes, width: int, height: int) -> None:
    result = [
        {"from_name": "decision", "to_name": "image", "type": "choices",
         "value": {"choices": ["release"]}},
        *(
            {"from_name": "missed", "to_name": "image", "type": "rectanglelabels",
             "original_width": width, "original_height": height,
             "value": {"x": 100 * x / width, "y": 100 * y / height, "width": 100 * w / width,
                       "height": 100 * h / height, "rotation": 0,
                       "rectanglelabels": ["face"]}}
            for x, y, w, h in boxes
        ),
    ]  # fmt: skip
    made = httpx.post(
        f"{server.url}/api/tasks/{task_id}/annotations/",
        json={"result": result, "lead_time": 2.5},
        headers=_headers(server),
    )
    assert made.status_code == 201, made.text[:300]


def test_calibration_round_trip_through_label_studio(ctx, destination, labelstudio) -> None:
    spec = DatasetSpec.model_validate({**DATASET_SPEC, "name": "calibration-walk"})
    with transaction(ctx.engine) as s:
        dataset = create_dataset(s, ctx, spec, actor=ADMIN)
        set_review_destination(ctx, s, dataset.id, destination.id, actor=ADMIN)
    opened = open_calibration(ctx, dataset.id, seed=SEED, actor=ADMIN)
    pushed = push_review_tasks(ctx, dataset.id, actor=ADMIN)
    assert sorted(pushed.created) == sorted(opened)
    me = httpx.get(f"{labelstudio.url}/api/current-user/whoami", headers=_headers(labelstudio))
    with transaction(ctx.engine) as s:
        add_reviewer(ctx, s, dataset.id, user=int(me.json()["id"]), actor=ADMIN)
        items = {i.ls_task_id: i for i in s.exec(select(ReviewItem)).all()}

    plans = {p.photo: p for p in build_batch(seed=SEED).items}
    planted, missed = 0, 0
    for task in project_tasks(labelstudio, pushed.project_id):
        item = items[task["id"]]
        plan = plans[item.details["calibration"]["photo"]]
        assert task["data"]["review_note"].startswith("Random sample")  # not told apart
        shown = httpx.get(task["data"]["image"])
        assert shown.status_code == 200 and shown.content == plan.image
        boxes = list(plan.visible)
        if boxes and not missed:
            boxes, missed = boxes[1:], 1  # the reviewer overlooks one planted face
        planted += len(plan.visible)
        _answer(labelstudio, task["id"], boxes, plan.width, plan.height)

    # the answers' webhooks wake the gateway server's own review pull too: whichever pull
    # reads an answer first measures it, once; this pull takes what is left
    deadline = time.monotonic() + 60
    while True:
        pull = pull_decisions(ctx, dataset.id, redactor=None, actor=ADMIN)  # type: ignore[arg-type]
        assert not pull.refused and not pull.resynced
        with transaction(ctx.engine) as s:
            rows = s.exec(select(ReviewItem).where(ReviewItem.dataset_id == dataset.id)).all()
            decided = sorted(r.asset_id for r in rows if r.decided_at is not None)
        if decided == sorted(r.asset_id for r in rows) or time.monotonic() > deadline:
            break
        time.sleep(0.2)  # polling a condition with a deadline, not timing anything
    assert len(decided) == len(opened)
    with transaction(ctx.engine) as s:
        states = {a.state for a in s.exec(select(Asset)).all()}
    assert states == {AssetState.REJECTED}  # measured, never released or re-rendered

    doc = json.loads(
        render(generate_dataset_report(ctx, dataset.id, actor=ADMIN), ReportFormat.JSON)
    )
    recall = doc["report"]["review"]["reviewer_recall"]
    assert (recall["planted"], recall["found"]) == (planted, planted - 1)
    times = {t["reason"]: t for t in doc["report"]["review"]["review_time"]}
    assert times["calibration"]["median_seconds"] == "2.5"
