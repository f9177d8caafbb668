"""Erasure and retention against the real Label Studio: the subject's tasks are deleted there
(read back as absent), the register lists the destination as a recipient told of it, and
expired tasks go on the policy's clock."""

from __future__ import annotations

import pytest
from sqlmodel import select

from gateway.core.db import transaction
from gateway.core.models import AssetSync, Destination, SyncState
from gateway.labelstudio.server import free_port
from gateway.labelstudio.tables import Annotation
from gateway.policy.erasure import erasure_register, request_erasure, retry_open_erasures
from gateway.policy.retention import DueKind, run_retention
from tests.labelstudio.fixtures import ADMIN, PHOTO_NAMES, sync_as_admin
from tests.labelstudio.helpers import project_tasks
from tests.policy.helpers import bind, lineage, policy_doc

pytestmark = [pytest.mark.db, pytest.mark.integration, pytest.mark.labelstudio]


def _sync(ctx, dataset, destination) -> int:
    return sync_as_admin(ctx, dataset, destination).project_id


@pytest.mark.timeout(600)
def test_erasure_and_retention_delete_label_studio_tasks(
    ctx, dataset, clock, released, destination, labelstudio
) -> None:
    retention = {
        "originals_days": 30,
        "redacted_days": 365,
        "vault_days": 365,
        "labelstudio_task_days": 60,
        "lineage_min_days": 3650,
    }
    bind(ctx, dataset, policy_doc("ls-tasks", retention=retention))
    project = _sync(ctx, dataset, destination)
    assert len(project_tasks(labelstudio, project)) == len(released)
    # an annotation came back for every task (as the webhook stores them)
    with transaction(ctx.engine) as s:
        for n, row in enumerate(s.exec(select(AssetSync)).all()):
            s.add(
                Annotation(
                    asset_id=row.asset_id,
                    destination_id=destination.id,
                    task_id=row.task_id or 0,
                    ls_annotation_id=n,
                    annotator="ann_x",
                    result=[],
                    created_at=ctx.clock(),
                    updated_at=ctx.clock(),
                )
            )
    # erase the subject of the first released photo
    with transaction(ctx.engine) as s:
        subject = next(f"subject-{n}" for n in PHOTO_NAMES)
        result = request_erasure(ctx, s, dataset_ref=dataset.name, actor=ADMIN, subject_id=subject)
    erased = result.erased
    with transaction(ctx.engine) as s:
        annotated = {a.asset_id for a in s.exec(select(Annotation)).all()}
    assert annotated == set(released) - set(erased)  # derived annotations went with the asset
    assert len(erased) == 1 and result.request.state == "completed"
    assert result.request.recipients == [
        {
            "destination_id": destination.id,
            "task_id": result.request.recipients[0]["task_id"],
            "state": "removed",
        }
    ]
    remaining = {t["data"]["gateway_asset_id"] for t in project_tasks(labelstudio, project)}
    assert remaining == set(released) - set(erased)
    # retention: tasks due after 60 days, everything else kept
    clock.advance(days=61)
    dry = run_retention(ctx, dry_run=True)
    task_items = [i for i in dry.plan.due if i.kind is DueKind.LABELSTUDIO_TASKS]
    assert {i.entity_id for i in task_items} == remaining
    real = run_retention(ctx, dry_run=False)
    assert real.done == dry.plan.due
    assert project_tasks(labelstudio, project) == []
    with transaction(ctx.engine) as s:
        states = {r.state for r in s.exec(select(AssetSync)).all()}
    assert states == {SyncState.REMOVED}
    assert len(lineage(ctx, "retention.labelstudio_tasks")) == len(remaining)
    assert len(lineage(ctx, "labelstudio.task_removed")) == len(released)


@pytest.mark.timeout(600)
def test_erasure_stays_open_while_label_studio_is_unreachable(
    ctx, dataset, released, destination, labelstudio
) -> None:
    project = _sync(ctx, dataset, destination)
    with transaction(ctx.engine) as s:  # Label Studio goes away (nothing listens there)
        row = s.get(Destination, destination.id)
        real_url, row.url = row.url, f"http://127.0.0.1:{free_port()}"
    subject = next(f"subject-{n}" for n in PHOTO_NAMES)
    with transaction(ctx.engine) as s:
        result = request_erasure(ctx, s, dataset_ref=dataset.name, actor=ADMIN, subject_id=subject)
    assert result.request.state == "open" and result.pending_recipients == 1
    assert retry_open_erasures(ctx) == []  # still unreachable: still open
    with transaction(ctx.engine) as s:
        s.get(Destination, destination.id).url = real_url
    [done] = retry_open_erasures(ctx)
    assert done.state == "completed" and done.recipients[0]["state"] == "removed"
    remaining = {t["data"]["gateway_asset_id"] for t in project_tasks(labelstudio, project)}
    assert remaining == set(released) - set(result.erased)
    with transaction(ctx.engine) as s:
        [row] = erasure_register(s)
    assert row.state == "completed" and row.completed_at is not None
