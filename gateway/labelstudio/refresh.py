"""Tasks whose frozen image URL no longer matches the asset's current redacted copy.

A URL is signed over the redacted copy's SHA-256 (gateway.labelstudio.urls), so when an asset
is redacted again (re-processing under a new policy version) the URL frozen into its task
answers 404. Each sync finds those tasks by comparing `assetsync.task_sha256` (the digest the
task's URL was signed for) with the asset's current `redacted_sha256`, and rewrites the task's
data in place (its annotations stay), reads it back, and records `labelstudio.task_refreshed`.
A task that is gone from Label Studio (or no longer names the asset) is replaced: the row goes
back to `pending` and the ordinary intent-then-import path makes a new task, exactly once.
Idempotent: Label Studio is written first and the record follows, so a run killed in between
finds the task already carrying the new data next time and only records it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlmodel import col, select

from gateway.core.context import GatewayContext
from gateway.core.db import transaction
from gateway.core.errors import GatewayError
from gateway.core.models import Asset, AssetState, AssetSync, Destination, SyncState
from gateway.labelstudio.client import LabelStudioClient
from gateway.labelstudio.errors import LabelStudioRejected
from gateway.labelstudio.task_data import task_data
from gateway.labelstudio.task_model import TaskField, claimed
from gateway.lineage import Action, Actor, recorder

# states whose redacted copy is shown (a released asset whose original was deleted included)
SHOWN = (AssetState.RELEASED,)


@dataclass
class RefreshReport:
    refreshed: list[str] = field(default_factory=list)
    replaced: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)


def stale_tasks(ctx: GatewayContext, dataset_id: str, destination_id: str) -> list[str]:
    """Assets with a synced task signed for another (or an unknown) redacted copy."""
    with transaction(ctx.engine) as session:
        rows = session.exec(
            select(AssetSync.asset_id, AssetSync.task_sha256, Asset.redacted_sha256)
            .join(Asset, col(Asset.id) == col(AssetSync.asset_id))
            .where(
                Asset.dataset_id == dataset_id,
                AssetSync.destination_id == destination_id,
                AssetSync.state == SyncState.SYNCED,
                col(Asset.state).in_(SHOWN),
                col(Asset.redacted_sha256).is_not(None),
            )
            .order_by(col(AssetSync.asset_id))
        ).all()
    return [asset_id for asset_id, signed, current in rows if signed != current]


def refresh_stale_tasks(
    ctx: GatewayContext,
    client: LabelStudioClient,
    destination: Destination,
    dataset_id: str,
    *,
    actor: Actor,
) -> RefreshReport:
    report = RefreshReport()
    for asset_id in stale_tasks(ctx, dataset_id, destination.id):
        try:
            outcome = _refresh_one(ctx, client, destination, asset_id, actor)
        except GatewayError as exc:  # per asset: the others go on; the next run retries it
            _record_failure(ctx, destination, asset_id, exc, actor)
            report.failed[asset_id] = exc.code
            continue
        (report.replaced if outcome == "replaced" else report.refreshed).append(asset_id)
    return report


def _refresh_one(
    ctx: GatewayContext,
    client: LabelStudioClient,
    destination: Destination,
    asset_id: str,
    actor: Actor,
) -> str:
    with transaction(ctx.engine) as session:
        asset = session.get(Asset, asset_id)
        row = session.get(AssetSync, (asset_id, destination.id))
        if asset is None or row is None or row.task_id is None:
            raise LabelStudioRejected("the sync record changed during the refresh")
        data = task_data(ctx, session, destination, asset)
        signed_for, task_id, before = asset.redacted_sha256, row.task_id, row.task_sha256
    remote = client.task(task_id)
    if remote is None or claimed(remote.data, TaskField.ASSET_ID) != asset_id:
        _send_back_to_import(ctx, destination, asset_id, task_id, before, actor)
        return "replaced"
    if remote.data != data:
        if not client.update_task_data(task_id, data):
            _send_back_to_import(ctx, destination, asset_id, task_id, before, actor)
            return "replaced"
        check = client.task(task_id)
        if check is None or claimed(check.data, TaskField.IMAGE) != data[TaskField.IMAGE]:
            raise LabelStudioRejected(
                "Label Studio did not keep the task's new image URL", task_id=task_id
            )
    with transaction(ctx.engine) as session:
        row = session.get(AssetSync, (asset_id, destination.id))
        if row is None or row.state != SyncState.SYNCED:
            return "refreshed"  # withdrawn meanwhile: that path recorded it
        now = ctx.clock()
        row.task_sha256, row.error, row.updated_at = signed_for, None, now
        session.add(row)
        recorder(ctx, session, actor, now=now).record(
            Action.LABELSTUDIO_TASK_REFRESHED,
            entity=asset_id,
            dataset=data[TaskField.DATASET_ID],
            inputs={"signed_for_sha256": before or "unknown"},
            outputs={"task_id": task_id, "signed_for_sha256": signed_for or ""},
            parameters={"destination_id": destination.id, "project_id": row.project_id or 0},
        )
    return "refreshed"


def _send_back_to_import(
    ctx: GatewayContext,
    destination: Destination,
    asset_id: str,
    task_id: int,
    before: str | None,
    actor: Actor,
) -> None:
    """The recorded task is gone: a new one is imported by the ordinary (exactly-once) path."""
    with transaction(ctx.engine) as session:
        row = session.get(AssetSync, (asset_id, destination.id))
        asset = session.get(Asset, asset_id)
        if row is None or asset is None:
            return
        now = ctx.clock()
        row.state, row.task_id, row.updated_at = SyncState.PENDING, None, now
        session.add(row)
        recorder(ctx, session, actor, now=now).record(
            Action.LABELSTUDIO_TASK_REPLACED,
            entity=asset_id,
            dataset=asset.dataset_id,
            inputs={"task_id": task_id, "signed_for_sha256": before or "unknown"},
            parameters={"destination_id": destination.id, "reason": "task-missing"},
        )


def _record_failure(
    ctx: GatewayContext, destination: Destination, asset_id: str, exc: GatewayError, actor: Actor
) -> None:
    """The task keeps its state (still `synced`, so no second task is made); the error is kept
    on the row and in lineage, and the mismatch makes the next run try again."""
    with transaction(ctx.engine) as session:
        row = session.get(AssetSync, (asset_id, destination.id))
        asset = session.get(Asset, asset_id)
        if row is None or asset is None:
            return
        now = ctx.clock()
        row.error, row.updated_at = f"refresh: {exc.code}", now
        session.add(row)
        recorder(ctx, session, actor, now=now).record(
            Action.LABELSTUDIO_TASK_REFRESH_FAILED,
            entity=asset_id,
            dataset=asset.dataset_id,
            parameters={"destination_id": destination.id, "error": exc.code},
        )
