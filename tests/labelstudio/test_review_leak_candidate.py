"""A leak-check quarantine in the real Label Studio review project: the task's image is the
engine's candidate rendition (fetched over HTTP through the review URL), the leak check's hits
are drawn in as face boxes, and once a reviewer decides, the URL is dead and the candidate is
gone. The quarantine is real: a weak primary face pass (CenterFace at 0.95) and one round of
leak-check fixes on a bundled photo (see tests/review/test_leak_candidate.py)."""

from __future__ import annotations

import time

import httpx
from sqlmodel import select

from gateway.core.clearance import Clearance, EnforcementPoint
from gateway.core.db import transaction
from gateway.core.models import Asset, AssetState
from gateway.review.candidates import candidate_image, candidate_of
from gateway.review.models import ReviewItem
from gateway.review.project import add_reviewer, push_review_tasks, set_review_destination
from gateway.review.queue import enqueue_for_review
from tests.labelstudio.fixtures import ADMIN, FAST_RETRY, release_photos
from tests.labelstudio.helpers import project_tasks, sdk
from tests.policy.helpers import bind, policy_doc

LEAKY = "masks_maksssksksss201.jpg"


def _shown(asset: Asset) -> Clearance:
    """What serving the candidate to a reviewer in eu-de needs (made by hand: the test reads
    the image the review route would serve under `fetch_clearance`)."""
    return Clearance(asset.dataset_id, EnforcementPoint.SYNC, "eu-de", "test@1")


def test_the_review_task_shows_the_candidate_with_the_leak_hits(
    ctx, dataset, session_redactor, destination, labelstudio
) -> None:
    weak_primary = {"faces": {"enabled": True, "threshold": 0.95}, "leak_check": {"max_rounds": 1}}
    bind(ctx, dataset, policy_doc("weak-primary-pass", redaction=weak_primary))
    assert release_photos(ctx, dataset, session_redactor, [LEAKY]) == []
    with transaction(ctx.engine) as s:
        (asset,) = s.exec(select(Asset)).all()
        assert asset.state == AssetState.QUARANTINED
        row = candidate_of(s, asset.id)
        assert row is not None
        image = candidate_image(ctx, s, asset, row, _shown(asset), to_region="eu-de")
        set_review_destination(ctx, s, dataset.id, destination.id, actor=ADMIN)
        enqueue_for_review(ctx, s, dataset.id, actor=ADMIN, sample=False)
        with sdk(labelstudio) as client:
            add_reviewer(ctx, s, dataset.id, user=int(client.users.whoami().id), actor=ADMIN)
    pushed = push_review_tasks(ctx, dataset.id, actor=ADMIN, retry=FAST_RETRY)
    (task,) = project_tasks(labelstudio, pushed.project_id)
    url = task["data"]["image"]
    shown = httpx.get(url)
    assert shown.status_code == 200 and shown.headers["content-type"] == "image/png"
    assert shown.content == image  # the candidate, not a placeholder
    (prediction,) = task["predictions"]
    leak = [r for r in prediction["result"] if r["id"].startswith("leak-")]
    assert len(leak) == len(row.leak_hits) and leak[0]["value"]["rectanglelabels"] == ["face"]

    decision = {
        "from_name": "decision",
        "to_name": "image",
        "type": "choices",
        "value": {"choices": ["reject"]},
    }
    with sdk(labelstudio) as client:
        client.annotations.create(task["id"], result=[decision])
    deadline = time.monotonic() + 60
    while True:  # the answer's webhook wakes the service's review pull
        with transaction(ctx.engine) as s:
            item = s.exec(select(ReviewItem)).one()
            if item.decided_at is not None:
                break
        assert time.monotonic() < deadline, "the review was not decided"
        time.sleep(0.05)  # polling the gateway's read-back, not timing anything
    with transaction(ctx.engine) as s:
        assert candidate_of(s, asset.id) is None
        assert s.get(Asset, asset.id).state == AssetState.REJECTED
    assert httpx.get(url).status_code == 404
