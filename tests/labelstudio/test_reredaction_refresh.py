"""An asset redacted again (re-processing under a new policy version) gets a new redacted
SHA-256, so the URL frozen into its task answers 404. The next sync rewrites that task's data
in place (annotations kept) or, if the task is gone, replaces it; recorded, and idempotent."""

from __future__ import annotations

import httpx
from sqlmodel import select

from gateway.core.db import transaction
from gateway.core.models import Asset, AssetState, AssetSync, SyncState
from gateway.labelstudio.tables import Annotation
from gateway.pipeline import drain
from gateway.policy.reprocess import apply_reprocess, plan_reprocess
from tests.labelstudio.fixtures import ADMIN, sync_as_admin
from tests.labelstudio.helpers import lineage, project_tasks, sdk
from tests.policy.helpers import bind, policy_doc


def _wait_until_redacted(ctx, asset_ids) -> None:
    import time

    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        with transaction(ctx.engine) as s:
            states = {s.get(Asset, a).state for a in asset_ids}
        if AssetState.PROCESSING not in states:
            return
        time.sleep(0.05)  # polling the service's worker thread, not timing anything
    raise AssertionError("re-processing did not finish")


def _tasks_by_asset(labelstudio, project_id):
    return {t["data"]["gateway_asset_id"]: t for t in project_tasks(labelstudio, project_id)}


def test_a_re_redacted_asset_gets_its_task_url_refreshed_or_replaced(
    ctx, dataset, released, destination, labelstudio, session_redactor
) -> None:
    first = sync_as_admin(ctx, dataset, destination)
    kept, lost = released[0], released[1]
    before = _tasks_by_asset(labelstudio, first.project_id)
    old_urls = {a: before[a]["data"]["image"] for a in (kept, lost)}
    assert all(httpx.get(u).status_code == 200 for u in old_urls.values())
    with transaction(ctx.engine) as s:
        old_sha = {a: s.get(Asset, a).redacted_sha256 for a in (kept, lost)}
    box = {
        "from_name": "boxes",
        "to_name": "image",
        "type": "rectanglelabels",
        "value": {"x": 5, "y": 5, "width": 10, "height": 10, "rectanglelabels": ["person"]},
    }
    with sdk(labelstudio) as client:
        made = client.annotations.create(before[kept]["id"], result=[box])

    # a new policy version redacts with solid fill instead of blur; two assets re-processed
    bind(ctx, dataset, policy_doc("stricter", redaction={"operator": "fill"}))
    with transaction(ctx.engine) as s:
        plan = plan_reprocess(s, dataset.name)
        plan.eligible = [kept, lost]
        apply_reprocess(ctx, s, plan, actor=ADMIN)
    # the gateway server's own workers may take the jobs first; either way, wait for them
    drain(ctx, redactor=session_redactor)
    _wait_until_redacted(ctx, [kept, lost])
    with transaction(ctx.engine) as s:
        assets = {a: s.get(Asset, a) for a in (kept, lost)}
        assert all(x.state == AssetState.RELEASED for x in assets.values())
        new_sha = {a: x.redacted_sha256 for a, x in assets.items()}
        new_blob = {a: ctx.store.get(x.redacted_blob) for a, x in assets.items()}
    trail = [
        (r["action"], r["entity"]["id"][:8], r.get("parameters"))
        for action in ("asset.processing", "asset.released", "asset.quarantined")
        for r in lineage(ctx, action)
        if r["entity"]["id"] in (kept, lost)
    ]
    assert all(new_sha[a] != old_sha[a] for a in (kept, lost)), trail
    assert all(httpx.get(u).status_code == 404 for u in old_urls.values())  # broken tasks
    with sdk(labelstudio) as client:  # and someone deleted one of them in Label Studio
        client.tasks.delete(str(before[lost]["id"]))

    second = sync_as_admin(ctx, dataset, destination)
    assert (second.refreshed, second.replaced, second.created) == (1, 1, 1)
    assert second.failed == {}
    after = _tasks_by_asset(labelstudio, first.project_id)
    assert sorted(after) == sorted(released)  # one task per asset, none twice
    assert after[kept]["id"] == before[kept]["id"]  # rewritten in place
    assert after[lost]["id"] != before[lost]["id"]  # replaced
    for asset_id in (kept, lost):
        response = httpx.get(after[asset_id]["data"]["image"])
        assert response.status_code == 200
        assert response.content == new_blob[asset_id]  # the new redacted copy
    with sdk(labelstudio) as client:
        annotations = client.annotations.list(after[kept]["id"])
    assert [a.id for a in annotations] == [made.id]  # the annotation stayed with its task
    with transaction(ctx.engine) as s:
        rows = {r.asset_id: r for r in s.exec(select(AssetSync)).all()}
        assert {r.state for r in rows.values()} == {SyncState.SYNCED}
        assert rows[kept].task_sha256 == new_sha[kept]
        assert rows[lost].task_sha256 == new_sha[lost]
        assert rows[lost].task_id == after[lost]["id"]
        assert len(s.exec(select(Annotation)).all()) == 1
    refreshed = lineage(ctx, "labelstudio.task_refreshed")
    assert len(refreshed) == 1 and refreshed[0]["entity"]["id"] == kept
    assert refreshed[0]["inputs"]["signed_for_sha256"] == old_sha[kept]
    assert refreshed[0]["outputs"]["signed_for_sha256"] == new_sha[kept]
    replaced = lineage(ctx, "labelstudio.task_replaced")
    assert len(replaced) == 1 and replaced[0]["entity"]["id"] == lost

    third = sync_as_admin(ctx, dataset, destination)  # idempotent
    assert (third.refreshed, third.replaced, third.created) == (0, 0, 0)
    assert len(project_tasks(labelstudio, first.project_id)) == len(released)
    assert len(lineage(ctx, "labelstudio.task_refreshed")) == 1
