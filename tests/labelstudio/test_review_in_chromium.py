"""The review loop as a reviewer really does it, in Label Studio's editor in headless Chromium.

A bundled photo on which the engine really misses a face (masks_maksssksksss44.jpg: the
evaluator, /work/shared/tools/eval_redaction.py on the engine's output for gateway/demo_photos,
finds the face at x=43 y=139 w=37 h=43 only 48% covered) is released by the real engine,
synced to the annotation project, and drawn into review by sampling (rate 1 here). The
reviewer draws a box over the visible face and picks "release"; meanwhile a second Label
Studio user who is not on the reviewer list answers "reject" on the same task. Each answer's
webhook wakes the service's review pull, which reads it back from Label Studio by task id:
the reviewer's decision re-renders the asset from its original with automatic and manual
regions through the real engine and its leak check, releases a new redacted copy
(pixels over the face changed) and sends it back to the annotation project; the other answer
is recorded as ignored and changes nothing. Screenshots go to $GATEWAY_EDITOR_SCREENSHOTS when
set (docs/screenshots/ holds one walk's)."""

from __future__ import annotations

import hashlib
import io
import os
import re
import uuid
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image
from sqlmodel import select

from gateway.core.db import transaction
from gateway.core.models import Asset, AssetState, AssetSync
from gateway.datasets import DatasetSpec, create_dataset
from gateway.labelstudio.sync import sync_dataset
from gateway.review.models import ReviewItem
from gateway.review.outcomes import review_outcomes
from gateway.review.project import add_reviewer, push_review_tasks, set_review_destination
from gateway.review.queue import enqueue_for_review
from tests.conftest import DATASET_SPEC
from tests.labelstudio.editor import CHROMIUM, DRIVER, Editor, browser, until
from tests.labelstudio.fixtures import ADMIN, release_photos
from tests.labelstudio.helpers import lineage, project_tasks

pytestmark = pytest.mark.skipif(
    CHROMIUM is None or DRIVER is None,
    reason="needs Debian's chromium and chromium-driver (scripts/setup.sh installs them)",
)
PHOTO = "masks_maksssksksss44.jpg"
# x, y, w, h in the 400x226 photo: a textured patch (the fur collar) that no engine region
# touches, so the reviewer's box is the only thing that masks it. Until session 6 this was the
# masked face at (43, 139, 37, 43), which the engine then covered only 48%; since the face
# detector sees past the image's right and bottom edges (mirrored padding) it covers it whole.
REVIEWER_BOX = (212, 160, 30, 38)


@pytest.mark.timeout(420)
def test_a_reviewer_boxes_what_the_engine_left_and_the_gateway_releases_it_redacted(
    ctx, session_redactor, destination, labelstudio, tmp_path
) -> None:
    shots = Path(os.environ.get("GATEWAY_EDITOR_SCREENSHOTS") or tmp_path / "shots")
    spec = DatasetSpec.model_validate({**DATASET_SPEC, "name": "review-walk"})
    with transaction(ctx.engine) as s:
        dataset = create_dataset(s, ctx, spec, actor=ADMIN)
    (asset_id,) = release_photos(ctx, dataset, session_redactor, [PHOTO])
    annotate = sync_dataset(
        ctx, dataset_ref=dataset.id, destination_ref=destination.id, actor=ADMIN
    )
    before_sha, before = _redacted(ctx, asset_id)

    with transaction(ctx.engine) as s:
        set_review_destination(ctx, s, dataset.id, destination.id, actor=ADMIN)
        queued = enqueue_for_review(ctx, s, dataset.id, actor=ADMIN, rate="1")
    assert queued.sampled == [asset_id] and queued.sample_id
    pushed = push_review_tasks(ctx, dataset.id, actor=ADMIN)
    with transaction(ctx.engine) as s:
        item = s.exec(select(ReviewItem).where(ReviewItem.asset_id == asset_id)).one()
        admin_id = _whoami(labelstudio)
        add_reviewer(ctx, s, dataset.id, user=admin_id, actor=ADMIN)
    (task,) = project_tasks(labelstudio, pushed.project_id)
    assert task["id"] == item.ls_task_id
    assert "/v1/review-images/" in task["data"]["image"]  # the redacted rendition, signed
    shown = httpx.get(task["data"]["image"])
    assert shown.status_code == 200 and hashlib.sha256(shown.content).hexdigest() == before_sha

    driver = browser(tmp_path / "profile")
    try:
        editor = Editor(driver, labelstudio.url, pushed.project_id)
        editor.login(labelstudio.username, labelstudio.password)
        editor.open(task["id"])
        editor.screenshot(shots / "review-1-task-with-engine-regions.png")
        # meanwhile a Label Studio user who is not a reviewer answers "reject": its webhook
        # wakes the service's review pull, which reads it back, records it and does nothing
        _non_reviewer_rejects(labelstudio, task["id"])
        until(lambda: lineage(ctx, "review.decision_ignored"), "the ignored answer recorded")
        with transaction(ctx.engine) as s:
            untouched = s.get(Asset, asset_id)
            assert (untouched.state, untouched.redacted_sha256) == ("released", before_sha)
        editor.pick_label("face")
        x, y, w, h = REVIEWER_BOX
        # from the bottom-left corner, outside every engine box (a drag that starts inside a
        # box moves that box instead of drawing a new one)
        editor.drag(((x - 4) / 400, (y + h + 4) / 226), ((x + w + 4) / 400, (y - 4) / 226))
        editor.tick("release")
        editor.screenshot(shots / "review-2-reviewer-box.png")
        editor.submit()
        # the reviewer's webhook wakes the review pull: read back, re-rendered, released
        until(lambda: _decided(ctx, item.id), "the review decided", seconds=120)
    finally:
        driver.quit()
    after_sha, after = _redacted(ctx, asset_id)
    assert after_sha != before_sha
    x, y, w, h = REVIEWER_BOX
    changed = np.abs(after[y : y + h, x : x + w].astype(int) - before[y : y + h, x : x + w])
    assert changed.mean() > 8, changed.mean()  # the boxed patch is masked now

    served = _annotation_task_image(labelstudio, annotate.project_id, asset_id)
    assert hashlib.sha256(served).hexdigest() == after_sha  # the annotators see the new copy
    decided = lineage(ctx, "review.decided")
    assert [d["parameters"]["decision"] for d in decided] == ["released"]
    assert decided[0]["parameters"]["findings"] == {"face": 1, "plate": 0, "text": 0}
    assert decided[0]["outputs"]["redacted_sha256"] == after_sha
    assert len(lineage(ctx, "review.decision_ignored")) == 1
    with transaction(ctx.engine) as s:
        outcomes = review_outcomes(s, dataset.id)
        assert s.get(Asset, asset_id).state == AssetState.RELEASED
        assert s.get(AssetSync, (asset_id, destination.id)).task_id is not None
    assert sorted(o.decision or "" for o in outcomes) == ["ignored", "released"]
    (mine,) = [o for o in outcomes if o.decision == "released"]
    assert mine.findings == (("face", 1), ("plate", 0), ("text", 0))
    assert (
        mine.lead_time_seconds is not None and mine.reviewer == decided[0]["parameters"]["reviewer"]
    )
    _screenshot_annotation_task(labelstudio, annotate.project_id, asset_id, tmp_path, shots)


def _decided(ctx, item_id: str) -> bool:
    with transaction(ctx.engine) as s:
        return s.get(ReviewItem, item_id).decided_at is not None


def _redacted(ctx, asset_id: str) -> tuple[str, np.ndarray]:
    with transaction(ctx.engine) as s:
        asset = s.get(Asset, asset_id)
        data = ctx.store.get(asset.redacted_blob)
    pixels = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
    return hashlib.sha256(data).hexdigest(), pixels


def _headers(server) -> dict[str, str]:
    return {"Authorization": f"Token {server.token}"}


def _whoami(server) -> int:
    answer = httpx.get(f"{server.url}/api/current-user/whoami", headers=_headers(server))
    answer.raise_for_status()
    return int(answer.json()["id"])


def _non_reviewer_rejects(server, task_id: int) -> int:
    """A second Label Studio user signs up and answers 'reject' through its own session."""
    with httpx.Client(base_url=server.url, follow_redirects=True, timeout=30) as user:
        page = user.get("/user/signup/")
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)
        assert token, "no sign-up form"
        user.post(
            "/user/signup/",
            data={
                "csrfmiddlewaretoken": token.group(1),
                "email": f"not-a-reviewer-{uuid.uuid4().hex[:8]}@gateway.local",
                "password": "not-a-reviewer-42",
                "how_find_us": "Other",
            },
            headers={"Referer": f"{server.url}/user/signup/"},
        )
        made = user.post(
            f"/api/tasks/{task_id}/annotations/",
            json={"result": [_choice("reject")], "lead_time": 1.5},
            headers={"X-CSRFToken": user.cookies.get("csrftoken") or "", "Referer": server.url},
        )
        assert made.status_code == 201, made.text[:300]
        return int(made.json()["id"])


def _choice(value: str) -> dict:
    return {
        "from_name": "decision",
        "to_name": "image",
        "type": "choices",
        "value": {"choices": [value]},
    }


def _annotation_task_image(server, project_id: int, asset_id: str) -> bytes:
    """Once the pull has sent the released asset back (after it closed the review)."""

    def sent() -> list[dict]:
        return [
            t
            for t in project_tasks(server, project_id)
            if t["data"]["gateway_asset_id"] == asset_id
        ]

    (task,) = until(sent, "the new task in the annotation project")
    answer = httpx.get(task["data"]["image"])
    answer.raise_for_status()
    return answer.content


def _screenshot_annotation_task(
    server, project_id: int, asset_id: str, tmp_path: Path, shots: Path
) -> None:
    (task,) = [
        t for t in project_tasks(server, project_id) if t["data"]["gateway_asset_id"] == asset_id
    ]
    driver = browser(tmp_path / "profile-annotator")
    try:
        editor = Editor(driver, server.url, project_id)
        editor.login(server.username, server.password)
        editor.open(task["id"])
        editor.screenshot(shots / "review-3-annotation-task-shows-new-copy.png")
    finally:
        driver.quit()
