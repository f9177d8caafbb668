"""Removing an asset's Label Studio tasks (retention, erasure, leak flags), and proving it.

A task is deleted only after checking that it is the asset's (its data names the gateway
asset id), then read back: only a 404 counts as removed. Withdrawing keeps the work: every
annotation the task holds (the flagging one too) is stored before the task is deleted. Label
Studio deletes a task's annotations and predictions with it; the images were never uploaded
to Label Studio (tasks hold gateway URLs), so no files remain there, except on a local-files
destination, whose exported redacted copy of the asset is deleted first (Label Studio stops
serving it at once, even while the task's removal is still pending). When Label Studio cannot
be reached, the task stays `synced` with the error recorded and is reported `removal-pending`
(never "removed").
"""

from __future__ import annotations

from typing import Any

from sqlmodel import Session, col, select

from gateway.core.context import GatewayContext
from gateway.core.errors import GatewayError
from gateway.core.models import Asset, AssetSync, Destination, SyncState
from gateway.labelstudio.annotation_store import keep_task_annotations
from gateway.labelstudio.client import LabelStudioClient, RemoteTask, RetryPolicy
from gateway.labelstudio.destinations import connect
from gateway.labelstudio.local_files import delete_exports
from gateway.labelstudio.task_model import TaskField, claimed
from gateway.lineage import Action, Actor, recorder

REMOVER = Actor("system", "labelstudio-removal")


class LabelStudioTaskRemover:
    """The `TaskRemover` retention and erasure use (gateway.policy.derived)."""

    def __init__(self, retry: RetryPolicy | None = None) -> None:
        self.retry = retry

    def remove_tasks(
        self, ctx: GatewayContext, session: Session, *, asset_id: str, reason: str
    ) -> list[dict[str, Any]]:
        return remove_asset_tasks(ctx, session, asset_id, reason, retry=self.retry)


def remove_asset_tasks(
    ctx: GatewayContext,
    session: Session,
    asset_id: str,
    reason: str,
    *,
    retry: RetryPolicy | None = None,
    destination_id: str | None = None,
) -> list[dict[str, Any]]:
    """Delete every Label Studio task of the asset (at one destination, if named), in the
    caller's transaction; one entry per recipient:
    {"destination_id", "task_id", "state": "removed" | "removal-pending"}."""
    stmt = select(AssetSync).where(
        AssetSync.asset_id == asset_id, col(AssetSync.state) != SyncState.REMOVED
    )
    if destination_id is not None:
        stmt = stmt.where(AssetSync.destination_id == destination_id)
    rows = session.exec(stmt).all()
    results = []
    asset = session.get(Asset, asset_id)
    for row in rows:
        destination = session.get(Destination, row.destination_id)
        if destination is None:  # cannot happen: removing a destination needs no live tasks
            results.append(_entry(row, "removal-pending"))
            continue
        if asset is not None:  # Label Studio stops serving it now, even if the task lingers
            delete_exports(destination, asset.dataset_id, asset_id)
        try:
            removed = _remove_row(ctx, session, destination, row, retry)
        except GatewayError as exc:
            row.error = f"removal: {exc.code}"
            session.add(row)
            results.append(_entry(row, "removal-pending"))
            continue
        _mark_removed(ctx, session, row, removed, reason)
        results.append(_entry(row, "removed"))
    return results


def _entry(row: AssetSync, state: str) -> dict[str, Any]:
    return {"destination_id": row.destination_id, "task_id": row.task_id, "state": state}


def _remove_row(
    ctx: GatewayContext,
    session: Session,
    destination: Destination,
    row: AssetSync,
    retry: RetryPolicy | None,
) -> list[int]:
    client = connect(ctx, destination, retry=retry)
    try:
        candidates = _candidates(client, row)
        for task in candidates:  # the annotators' work stays with the gateway
            keep_task_annotations(
                ctx, session, destination, task.id, task.data, task.annotations, actor=REMOVER
            )
        for task in candidates:
            client.delete_task(task.id)
        for task in candidates:
            if client.task(task.id) is not None:
                raise _StillThere(f"task {task.id} is still in Label Studio", task_id=task.id)
        return [task.id for task in candidates]
    finally:
        client.close()


class _StillThere(GatewayError):
    code, status, title = "labelstudio-task-still-present", 502, "Task still present"


def _candidates(client: LabelStudioClient, row: AssetSync) -> list[RemoteTask]:
    """The tasks that are this asset's: the recorded one (checked), or, for an import whose
    answer was lost, every task of the project naming the asset."""
    if row.task_id is not None and row.state == SyncState.SYNCED:
        task = client.task(row.task_id)
        if task is None:
            return []
        if claimed(task.data, TaskField.ASSET_ID) != row.asset_id:
            raise _StillThere(
                "the recorded task does not belong to this asset; not deleting it",
                task_id=row.task_id,
            )
        return [task]
    if row.project_id is None:
        return []
    return [
        t
        for t in client.tasks(row.project_id)
        if claimed(t.data, TaskField.ASSET_ID) == row.asset_id
    ]


def _mark_removed(
    ctx: GatewayContext, session: Session, row: AssetSync, removed: list[int], reason: str
) -> None:
    now = ctx.clock()
    row.state, row.error, row.updated_at = SyncState.REMOVED, None, now
    session.add(row)
    asset = session.get(Asset, row.asset_id)
    recorder(ctx, session, REMOVER, now=now).record(
        Action.LABELSTUDIO_TASK_REMOVED,
        entity=row.asset_id,
        dataset=asset.dataset_id if asset else None,
        outputs={"deleted_tasks": removed, "verified_absent": "yes"},
        parameters={"destination_id": row.destination_id, "reason": reason},
    )
