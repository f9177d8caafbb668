"""The retention runner (GDPR Art. 5(1)(e)): find what expired under each dataset's policy,
and delete it, one item per transaction, recording each deletion.

`plan_retention` is pure reading: the dry run prints it, and a real run executes exactly
that plan (each item is re-checked inside its own transaction, so a concurrent change or a
re-run never deletes twice). Legal holds exempt what they cover. A run killed half-way
leaves each item either done and recorded, or not done; the next run finishes the rest.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

from sqlmodel import Session, col, select

from gateway.asset_states import note_original_gone, record_original_deleted, transition
from gateway.core.clock import as_utc
from gateway.core.context import GatewayContext
from gateway.core.db import transaction
from gateway.core.models import Asset, AssetState, AssetSync, Dataset, SyncState
from gateway.lineage import Action, Actor, recorder
from gateway.policy.derived import (
    TaskRemover,
    default_task_remover,
    delete_blob,
    delete_detections,
    shred_unused_key_versions,
)
from gateway.policy.errors import PolicyMissing
from gateway.policy.governing import governing_policy
from gateway.policy.schema import RetentionPolicy
from gateway.policy.tables import LegalHold
from gateway.pseudonymisation.tables import VaultEntry
from gateway.review.candidates import drop_candidate

RETENTION = Actor("system", "retention")
S = AssetState
IN_FLIGHT = frozenset({S.RECEIVED, S.PROCESSING})  # the pipeline still needs the original
GONE = frozenset({S.EXPIRED, S.ERASED})


class DueKind(StrEnum):
    ORIGINAL = "original"
    REDACTED = "redacted"  # the redacted copy, and with it the asset's remaining data
    LABELSTUDIO_TASKS = "labelstudio_tasks"
    VAULT_ENTRY = "vault_entry"


@dataclass(frozen=True, slots=True)
class DueItem:
    kind: DueKind
    dataset_id: str
    entity_id: str  # asset id, or vault entry id
    due_at: datetime
    rule: str  # e.g. "retention.originals_days=30"

    def describe(self) -> str:
        return f"{self.kind.value:<18} {self.entity_id}  due {self.due_at:%Y-%m-%d}  ({self.rule})"


@dataclass
class RetentionPlan:
    due: list[DueItem] = field(default_factory=list)
    held: list[DueItem] = field(default_factory=list)
    errors: list[dict[str, str]] = field(default_factory=list)


@dataclass
class RetentionReport:
    plan: RetentionPlan
    done: list[DueItem] = field(default_factory=list)
    skipped: list[DueItem] = field(default_factory=list)  # no longer due when re-checked
    dry_run: bool = False

    def describe(self) -> str:
        verb = "would delete" if self.dry_run else "deleted"
        items = self.plan.due if self.dry_run else self.done
        lines = [f"retention: {verb} {len(items)} item(s); {len(self.plan.held)} held"]
        lines += [f"  {item.describe()}" for item in items]
        lines += [f"  held: {item.describe()}" for item in self.plan.held]
        lines += [f"  error: {e['dataset_id']}: {e['message']}" for e in self.plan.errors]
        return "\n".join(lines)


def plan_retention(
    session: Session, *, now: datetime, datasets: Collection[str] | None = None
) -> RetentionPlan:
    """Due and held items of every dataset, or only of `datasets` when given."""
    plan = RetentionPlan()
    for dataset in session.exec(select(Dataset).order_by(col(Dataset.id))).all():
        if datasets is not None and dataset.id not in datasets:
            continue
        try:
            policy = governing_policy(session, dataset.id).document.retention
        except PolicyMissing as exc:  # nothing is deleted under an unknown policy
            plan.errors.append({"dataset_id": dataset.id, "message": exc.message})
            continue
        holds = _holds(session, dataset.id)
        for item in _dataset_due(session, dataset.id, policy, now=now):
            target = plan.held if (None in holds or item.entity_id in holds) else plan.due
            target.append(item)
    return plan


def _holds(session: Session, dataset_id: str) -> set[str | None]:
    rows = session.exec(
        select(LegalHold.asset_id).where(
            LegalHold.dataset_id == dataset_id, col(LegalHold.released_at).is_(None)
        )
    ).all()
    return set(rows)


def _dataset_due(
    session: Session, dataset_id: str, policy: RetentionPolicy, *, now: datetime
) -> list[DueItem]:
    due: list[DueItem] = []
    assets = session.exec(
        select(Asset).where(Asset.dataset_id == dataset_id).order_by(col(Asset.created_at))
    ).all()
    for asset in assets:
        item = _asset_due(asset, policy, now=now)
        if item is not None:
            due.append(item)
    due += _tasks_due(session, dataset_id, policy, now=now)
    due += _vault_due(session, dataset_id, policy, now=now)
    return due


def _asset_due(asset: Asset, policy: RetentionPolicy, *, now: datetime) -> DueItem | None:
    state = AssetState(asset.state)
    if state in GONE or state in IN_FLIGHT:
        return None
    born = as_utc(asset.created_at)
    expires = born + timedelta(days=policy.redacted_days)
    if expires <= now:
        rule = f"retention.redacted_days={policy.redacted_days}"
        return DueItem(DueKind.REDACTED, asset.dataset_id, asset.id, expires, rule)
    original_due = born + timedelta(days=policy.originals_days)
    if asset.original_blob is not None and original_due <= now:
        rule = f"retention.originals_days={policy.originals_days}"
        return DueItem(DueKind.ORIGINAL, asset.dataset_id, asset.id, original_due, rule)
    return None


def _tasks_due(
    session: Session, dataset_id: str, policy: RetentionPolicy, *, now: datetime
) -> list[DueItem]:
    cutoff = now - timedelta(days=policy.labelstudio_task_days)
    rows = session.exec(
        select(Asset.id, Asset.created_at)
        .join(AssetSync, col(AssetSync.asset_id) == col(Asset.id))
        .where(
            Asset.dataset_id == dataset_id,
            col(AssetSync.state) == SyncState.SYNCED,
            col(Asset.created_at) <= cutoff,
        )
        .distinct()
    ).all()
    rule = f"retention.labelstudio_task_days={policy.labelstudio_task_days}"
    return [
        DueItem(
            DueKind.LABELSTUDIO_TASKS,
            dataset_id,
            asset_id,
            as_utc(created) + timedelta(days=policy.labelstudio_task_days),
            rule,
        )
        for asset_id, created in rows
    ]


def _vault_due(
    session: Session, dataset_id: str, policy: RetentionPolicy, *, now: datetime
) -> list[DueItem]:
    cutoff = now - timedelta(days=policy.vault_days)
    rows = session.exec(
        select(VaultEntry)
        .where(VaultEntry.dataset_id == dataset_id, col(VaultEntry.created_at) <= cutoff)
        .order_by(col(VaultEntry.id))
    ).all()
    rule = f"retention.vault_days={policy.vault_days}"
    return [
        DueItem(
            DueKind.VAULT_ENTRY,
            dataset_id,
            str(row.id),
            as_utc(row.created_at) + timedelta(days=policy.vault_days),
            rule,
        )
        for row in rows
    ]


def run_retention(
    ctx: GatewayContext,
    *,
    dry_run: bool,
    task_remover: TaskRemover | None = None,
    on_item: Callable[[DueItem], None] | None = None,
    datasets: Collection[str] | None = None,
    mine: Callable[[Session, DueItem], bool] | None = None,
) -> RetentionReport:
    """Plan, then (unless dry) delete each due item in its own transaction. `mine`: the due
    items this process takes (a region's worker: those whose blobs are in its bucket)."""
    now = ctx.clock()
    with transaction(ctx.engine) as session:
        plan = plan_retention(session, now=now, datasets=datasets)
        if mine is not None:
            plan.due = [item for item in plan.due if mine(session, item)]
    report = RetentionReport(plan=plan, dry_run=dry_run)
    if dry_run:
        return report
    remover = task_remover or default_task_remover()
    for item in plan.due:
        with transaction(ctx.engine) as session:
            done = _execute(ctx, session, item, remover=remover, now=now)
        (report.done if done else report.skipped).append(item)
        if on_item:
            on_item(item)
    return report


def _execute(
    ctx: GatewayContext, session: Session, item: DueItem, *, remover: TaskRemover, now: datetime
) -> bool:
    if item.kind is DueKind.VAULT_ENTRY:
        return _delete_vault_entry(ctx, session, item)
    asset = session.get(Asset, item.entity_id, with_for_update=True)
    if asset is None:
        return False
    if item.kind is DueKind.LABELSTUDIO_TASKS:  # also after expiry: a removal may be pending
        return _remove_tasks(ctx, session, asset, item, remover=remover)
    if AssetState(asset.state) in GONE | IN_FLIGHT:
        return False
    if item.kind is DueKind.ORIGINAL:
        return _delete_original(ctx, session, asset, item)
    return _expire(ctx, session, asset, item, remover=remover, now=now)


def _delete_original(ctx: GatewayContext, session: Session, asset: Asset, item: DueItem) -> bool:
    if asset.original_blob is None:
        return False
    delete_blob(ctx, session, asset.original_blob, owner=asset.id)
    deleted = ["original"]
    if drop_candidate(ctx, session, asset.id):  # it is the original's masked pixels
        deleted.append("review-candidate")
    record_original_deleted(  # the state stays: a released asset is still released
        session,
        asset,
        actor=RETENTION,
        now=ctx.clock(),
        region=ctx.settings.region,
        parameters={"rule": item.rule, "deleted": deleted},
    )
    shred_unused_key_versions(session, asset.dataset_id, now=ctx.clock())
    return True


def _expire(
    ctx: GatewayContext,
    session: Session,
    asset: Asset,
    item: DueItem,
    *,
    remover: TaskRemover,
    now: datetime,
) -> bool:
    deleted = [
        kind
        for kind, key in (("original", asset.original_blob), ("redacted", asset.redacted_blob))
        if key is not None
    ]
    delete_blob(ctx, session, asset.original_blob, owner=asset.id)
    delete_blob(ctx, session, asset.redacted_blob, owner=asset.id)
    if drop_candidate(ctx, session, asset.id):
        deleted.append("review-candidate")
    recipients = remover.remove_tasks(ctx, session, asset_id=asset.id, reason=item.rule)
    delete_detections(session, asset.id)
    note_original_gone(asset, now=now)
    asset.original_blob = asset.redacted_blob = None
    asset.private_meta = None  # the sealed identifiers go with the data
    transition(
        session,
        asset,
        S.EXPIRED,
        actor=RETENTION,
        now=ctx.clock(),
        region=ctx.settings.region,
        parameters={
            "rule": item.rule,
            "deleted": [*deleted, "detections", "annotations", "private_metadata"],
            "labelstudio_tasks": _task_states(recipients),
        },
    )
    shred_unused_key_versions(session, asset.dataset_id, now=now)
    return True


def _remove_tasks(
    ctx: GatewayContext, session: Session, asset: Asset, item: DueItem, *, remover: TaskRemover
) -> bool:
    recipients = remover.remove_tasks(ctx, session, asset_id=asset.id, reason=item.rule)
    recorder(ctx, session, RETENTION).record(
        Action.RETENTION_LABELSTUDIO_TASKS,
        entity=asset.id,
        dataset=asset.dataset_id,
        parameters={"rule": item.rule, "labelstudio_tasks": _task_states(recipients)},
    )
    return True


def _delete_vault_entry(ctx: GatewayContext, session: Session, item: DueItem) -> bool:
    entry = session.get(VaultEntry, int(item.entity_id), with_for_update=True)
    if entry is None:  # a concurrent run took it
        return False
    session.delete(entry)
    recorder(ctx, session, RETENTION).record(
        Action.RETENTION_VAULT_ENTRY_DELETED,
        entity=item.entity_id,
        dataset=item.dataset_id,
        parameters={"rule": item.rule, "field": entry.field},
    )
    return True


def _task_states(recipients: list[dict[str, object]]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for r in recipients:
        counts[str(r["state"])] = counts.get(str(r["state"]), 0) + 1
    return counts
