"""Sync a dataset's released, redacted assets to a Label Studio destination as tasks.

Idempotent and resumable: before each import the intent is recorded (AssetSync state
`intent_recorded`, committed); after it the task ids are. A run that died in between is
resumed by adopting the tasks Label Studio already holds, found by the gateway asset id in
their data, so nothing is created twice. Residency is checked first (its Clearance); a denied
sync raises `ResidencyViolation` naming the rule, and the attempt is recorded in lineage.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlmodel import Session, col, select

from gateway.core.clearance import Clearance
from gateway.core.context import GatewayContext
from gateway.core.db import transaction
from gateway.core.errors import GatewayError, NotFound
from gateway.core.models import Asset, AssetState, AssetSync, Dataset, Destination, SyncState
from gateway.datasets import get_dataset
from gateway.labelstudio.client import LabelStudioClient, RetryPolicy
from gateway.labelstudio.destinations import connect, get_destination
from gateway.labelstudio.errors import LabelStudioRejected
from gateway.labelstudio.local_files import (
    delete_exports,
    ensure_local_storage,
    export_dir,
    uses_local_files,
)
from gateway.labelstudio.projects import ensure_project
from gateway.labelstudio.refresh import refresh_stale_tasks
from gateway.labelstudio.removal import remove_asset_tasks
from gateway.labelstudio.residency_withdrawal import enforce_or_withdraw
from gateway.labelstudio.sync_plan import plan_sync, skipped_by_reason
from gateway.labelstudio.task_data import task_data
from gateway.labelstudio.task_model import TaskField, claimed
from gateway.lineage import Action, Actor, recorder
from gateway.metrics import observe_sync

Progress = Callable[[int, int], None]
WITHDRAWN_STATES = (
    AssetState.QUARANTINED,
    AssetState.ERASED,
    AssetState.EXPIRED,
    AssetState.REJECTED,
)


@dataclass
class SyncReport:
    dataset: str
    destination: str
    project_id: int = 0
    created: int = 0
    adopted: int = 0
    already: int = 0
    withdrawn: int = 0
    refreshed: int = 0
    replaced: int = 0
    failed: dict[str, str] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)  # asset id -> why it was not sent

    def describe(self) -> str:
        return (
            f"project {self.project_id}: {self.created} tasks created, {self.adopted} adopted, "
            f"{self.already} already synced, {self.refreshed} refreshed (new redacted copy), "
            f"{self.replaced} replaced, {self.withdrawn} withdrawn, {len(self.failed)} failed, "
            f"{len(self.skipped)} skipped"
        )

    def view(self) -> dict[str, Any]:
        """The API's answer: counts, and every failed or skipped asset with its reason."""
        return {
            "dataset": self.dataset,
            "destination": self.destination,
            "project_id": self.project_id,
            "created": self.created,
            "adopted": self.adopted,
            "already": self.already,
            "refreshed": self.refreshed,
            "replaced": self.replaced,
            "withdrawn": self.withdrawn,
            "failed": [{"asset_id": a, "error": e} for a, e in sorted(self.failed.items())],
            "skipped": [{"asset_id": a, "reason": r} for a, r in self.skipped.items()],
            "skipped_by_reason": skipped_by_reason(self.skipped),
        }


def sync_dataset(
    ctx: GatewayContext,
    *,
    dataset_ref: str,
    destination_ref: str,
    actor: Actor,
    batch_size: int = 50,
    retry: RetryPolicy | None = None,
    progress: Progress | None = None,
) -> SyncReport:
    dataset, destination, clearance = _check_residency(
        ctx, dataset_ref, destination_ref, actor, retry
    )
    report = SyncReport(dataset=dataset.name, destination=destination.name)
    client = connect(ctx, destination, retry=retry)
    try:
        report.project_id = ensure_project(
            ctx, client, dataset=dataset, destination=destination, actor=actor
        )
        if uses_local_files(destination):
            _connect_local_storage(ctx, client, dataset, destination, report.project_id, actor)
        report.withdrawn = _withdraw_unreleased(ctx, dataset.id, destination.id)
        report.adopted = _resume(ctx, client, dataset, destination, report.project_id, actor)
        refresh = refresh_stale_tasks(ctx, client, destination, dataset.id, actor=actor)
        report.refreshed, report.replaced = len(refresh.refreshed), len(refresh.replaced)
        report.failed.update(refresh.failed)
        with transaction(ctx.engine) as session:
            plan = plan_sync(session, dataset.id, destination.id)
        todo, report.already, report.skipped = plan.todo, plan.already, plan.skipped
        total, done = len(todo), 0
        for start in range(0, total, batch_size):
            batch = todo[start : start + batch_size]
            _import_batch(ctx, client, destination, report, batch, actor, clearance)
            done += len(batch)
            if progress:
                progress(done, total)
        _record_summary(ctx, dataset, destination, report, actor)
        observe_sync(report.created, report.adopted, report.refreshed, len(report.failed))
    finally:
        client.close()
    return report


def _check_residency(
    ctx: GatewayContext,
    dataset_ref: str,
    destination_ref: str,
    actor: Actor,
    retry: RetryPolicy | None = None,
) -> tuple[Dataset, Destination, Clearance]:
    """Residency first. Denied (e.g. a policy activated since the last sync forbids the
    destination's region): the dataset's tasks there are withdrawn, then the sync is refused."""
    with transaction(ctx.engine) as session:
        dataset = get_dataset(session, dataset_ref)
        destination = get_destination(session, destination_ref)
    clearance = enforce_or_withdraw(ctx, dataset.id, destination, actor=actor, retry=retry)
    return dataset, destination, clearance


def _connect_local_storage(
    ctx: GatewayContext,
    client: LabelStudioClient,
    dataset: Dataset,
    destination: Destination,
    project_id: int,
    actor: Actor,
) -> None:
    if not ensure_local_storage(client, destination, dataset.id, project_id):
        return
    with transaction(ctx.engine) as session:
        recorder(ctx, session, actor).record(
            Action.LABELSTUDIO_LOCAL_STORAGE_CONNECTED,
            entity=destination.id,
            dataset=dataset.id,
            parameters={
                "project_id": project_id,
                "folder": export_dir(destination, dataset.id)
                .relative_to(destination.local_files_root or "/")
                .as_posix(),
            },
        )


def _withdraw_unreleased(ctx: GatewayContext, dataset_id: str, destination_id: str) -> int:
    """Fail closed: tasks of assets quarantined, erased or expired since (by any path) are
    removed before anything new is sent."""
    with transaction(ctx.engine) as session:
        stale = session.exec(
            select(AssetSync.asset_id)
            .join(Asset, col(Asset.id) == col(AssetSync.asset_id))
            .where(
                Asset.dataset_id == dataset_id,
                AssetSync.destination_id == destination_id,
                col(AssetSync.state).in_([SyncState.SYNCED, SyncState.INTENT_RECORDED]),
                col(Asset.state).in_(WITHDRAWN_STATES),
            )
        ).all()
    for asset_id in stale:
        with transaction(ctx.engine) as session:
            remove_asset_tasks(ctx, session, asset_id, "asset-no-longer-released")
    return len(stale)


def _resume(
    ctx: GatewayContext,
    client: LabelStudioClient,
    dataset: Dataset,
    destination: Destination,
    project_id: int,
    actor: Actor,
) -> int:
    """Adopt tasks an interrupted run imported; put intents Label Studio never saw back."""
    with transaction(ctx.engine) as session:
        pending = _sync_rows(session, dataset.id, destination.id, SyncState.INTENT_RECORDED)
    if not pending:
        return 0
    held = _tasks_by_asset(client, project_id)
    adopted, duplicates = 0, []
    with transaction(ctx.engine) as session:
        for row in pending:
            fresh = _sync_row(session, row.asset_id, destination.id)
            task_ids = held.get(row.asset_id, [])
            if task_ids:
                _mark_synced(ctx, session, fresh, task_ids[0], project_id, actor, adopted=True)
                adopted += 1
                duplicates += task_ids[1:]
            else:
                fresh.state, fresh.updated_at = SyncState.PENDING, ctx.clock()
                session.add(fresh)
    for extra in duplicates:
        client.delete_task(extra)  # a duplicate from an earlier crash: exactly one stays
    return adopted


def _tasks_by_asset(client: LabelStudioClient, project_id: int) -> dict[str, list[int]]:
    held: dict[str, list[int]] = {}
    for task in client.tasks(project_id):
        asset_id = claimed(task.data, TaskField.ASSET_ID)
        if isinstance(asset_id, str):
            held.setdefault(asset_id, []).append(task.id)
    return {k: sorted(v) for k, v in held.items()}


def _sync_rows(
    session: Session, dataset_id: str, destination_id: str, state: SyncState
) -> list[AssetSync]:
    return list(
        session.exec(
            select(AssetSync)
            .join(Asset, col(Asset.id) == col(AssetSync.asset_id))
            .where(
                Asset.dataset_id == dataset_id,
                AssetSync.destination_id == destination_id,
                AssetSync.state == state,
            )
        ).all()
    )


def _import_batch(
    ctx: GatewayContext,
    client: LabelStudioClient,
    destination: Destination,
    report: SyncReport,
    asset_ids: list[str],
    actor: Actor,
    clearance: Clearance,
) -> None:
    tasks = _record_intent(
        ctx, destination, report.project_id, asset_ids, actor, failures=report.failed
    )
    if not tasks:
        return
    try:
        task_ids = client.import_tasks(
            report.project_id, [t for _, t in tasks], clearance=clearance
        )
    except LabelStudioRejected as exc:
        if len(tasks) == 1:
            _mark_failed(ctx, destination, tasks[0][0], exc, actor)
            report.failed[tasks[0][0]] = exc.code
            return
        for asset_id, _ in tasks:  # isolate the asset Label Studio refuses
            _import_batch(ctx, client, destination, report, [asset_id], actor, clearance)
        return
    with transaction(ctx.engine) as session:
        for (asset_id, _), task_id in zip(tasks, task_ids, strict=True):
            row = _sync_row(session, asset_id, destination.id)
            _mark_synced(ctx, session, row, task_id, report.project_id, actor, adopted=False)
    report.created += len(tasks)


def _record_intent(
    ctx: GatewayContext,
    destination: Destination,
    project_id: int,
    asset_ids: list[str],
    actor: Actor,
    *,
    failures: dict[str, str] | None = None,
) -> list[tuple[str, dict[str, Any]]]:
    """Build task data for assets still released and commit the intent to import them. An
    asset whose task data cannot be built (its sealed metadata fails its integrity check, its
    key is gone...) is recorded as failed on its own and never sent; the others go on."""
    built: list[tuple[str, dict[str, Any]]] = []
    for asset_id in asset_ids:
        try:
            with transaction(ctx.engine) as session:
                asset = session.get(Asset, asset_id)
                if asset is None or asset.state != AssetState.RELEASED:
                    continue  # quarantined or erased since planning: never sent
                built.append((asset_id, task_data(ctx, session, destination, asset)))
        except GatewayError as exc:  # fail closed for this asset only
            _mark_failed(ctx, destination, asset_id, exc, actor)
            if failures is not None:
                failures[asset_id] = exc.code
    return _commit_intent(ctx, destination, project_id, built, actor)


def _commit_intent(
    ctx: GatewayContext,
    destination: Destination,
    project_id: int,
    built: list[tuple[str, dict[str, Any]]],
    actor: Actor,
) -> list[tuple[str, dict[str, Any]]]:
    tasks: list[tuple[str, dict[str, Any]]] = []
    now = ctx.clock()
    with transaction(ctx.engine) as session:
        for asset_id, data in built:
            asset = session.get(Asset, asset_id)
            if asset is None or asset.state != AssetState.RELEASED:
                continue  # changed while the task data was built: never sent
            tasks.append((asset_id, data))
            row = session.get(AssetSync, (asset_id, destination.id)) or AssetSync(
                asset_id=asset_id, destination_id=destination.id, state=SyncState.PENDING
            )
            row.state, row.project_id, row.updated_at = SyncState.INTENT_RECORDED, project_id, now
            row.attempts, row.error = row.attempts + 1, None
            row.task_sha256 = asset.redacted_sha256  # what the URL in this task is signed for
            session.add(row)
        if tasks:
            recorder(ctx, session, actor, now=now).record(
                Action.LABELSTUDIO_IMPORT_INTENT,
                entity=destination.id,
                dataset=_dataset_of(session, tasks[0][0]),
                inputs={"assets": [a for a, _ in tasks]},
                parameters={"project_id": project_id, "target_region": destination.region},
            )
    return tasks


def _dataset_of(session: Session, asset_id: str) -> str:
    asset = session.get(Asset, asset_id)
    if asset is None:
        raise NotFound("asset vanished during sync", asset_id=asset_id)
    return asset.dataset_id


def _sync_row(session: Session, asset_id: str, destination_id: str) -> AssetSync:
    row = session.get(AssetSync, (asset_id, destination_id))
    if row is None:
        raise NotFound("sync record vanished during sync", asset_id=asset_id)
    return row


def _mark_synced(
    ctx: GatewayContext,
    session: Session,
    row: AssetSync,
    task_id: int,
    project_id: int,
    actor: Actor,
    *,
    adopted: bool,
) -> None:
    now = ctx.clock()
    row.state, row.task_id, row.project_id, row.updated_at = (
        SyncState.SYNCED,
        task_id,
        project_id,
        now,
    )
    session.add(row)
    recorder(ctx, session, actor, now=now).record(
        Action.LABELSTUDIO_TASK_SYNCED,
        entity=row.asset_id,
        dataset=_dataset_of(session, row.asset_id),
        outputs={"task_id": task_id, "project_id": project_id},
        parameters={"destination_id": row.destination_id, "adopted": "yes" if adopted else "no"},
    )


def _mark_failed(
    ctx: GatewayContext, destination: Destination, asset_id: str, exc: Exception, actor: Actor
) -> None:
    code = getattr(exc, "code", type(exc).__name__)
    with transaction(ctx.engine) as session:
        row = session.get(AssetSync, (asset_id, destination.id)) or AssetSync(
            asset_id=asset_id, destination_id=destination.id, state=SyncState.PENDING
        )
        if row.state != SyncState.INTENT_RECORDED:  # failed before its intent: count it here
            row.attempts += 1
        now = ctx.clock()
        row.state, row.error, row.updated_at = SyncState.FAILED, f"{code}: {exc}", now
        session.add(row)
        delete_exports(destination, _dataset_of(session, asset_id), asset_id)  # never left served
        recorder(ctx, session, actor, now=now).record(
            Action.LABELSTUDIO_TASK_FAILED,
            entity=asset_id,
            dataset=_dataset_of(session, asset_id),
            parameters={"destination_id": destination.id, "error": str(code)},
        )


def _record_summary(
    ctx: GatewayContext,
    dataset: Dataset,
    destination: Destination,
    report: SyncReport,
    actor: Actor,
) -> None:
    with transaction(ctx.engine) as session:
        recorder(ctx, session, actor).record(
            Action.LABELSTUDIO_SYNC_COMPLETED,
            entity=dataset.id,
            dataset=dataset.id,
            outputs={
                "created": report.created,
                "adopted": report.adopted,
                "refreshed": report.refreshed,
                "replaced": report.replaced,
                "already": report.already,
                "failed": len(report.failed),
                "skipped": len(report.skipped),
            },
            parameters={
                "destination_id": destination.id,
                "target_region": destination.region,
                "project_id": report.project_id,
            },
        )
