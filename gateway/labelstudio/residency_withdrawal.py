"""Tasks a residency policy no longer allows, and their withdrawal.

When a newly activated policy forbids a destination's region for annotation, the image route
already refuses every fetch (it checks residency per request), so annotators would see broken
images. The next sync to that destination, or the next reconcile, withdraws those tasks
instead: the annotations are pulled first (the work is kept), then each task is deleted and
read back (`remove_asset_tasks`, one `labelstudio.task_removed` record each), and one
`labelstudio.residency_withdrawn` record per dataset and destination names the rule.

`forbidden_tasks` only reads: activating a policy with `dry_run` lists what it would withdraw.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlmodel import Session, col, select

from gateway.core.clearance import Clearance
from gateway.core.context import GatewayContext
from gateway.core.db import transaction
from gateway.core.errors import GatewayError, ResidencyViolation
from gateway.core.models import Asset, AssetSync, Destination, SyncState
from gateway.labelstudio.annotations import pull_annotations
from gateway.labelstudio.client import RetryPolicy
from gateway.labelstudio.removal import remove_asset_tasks
from gateway.lineage import Action, Actor, recorder
from gateway.policy.catalogue import load_catalogue
from gateway.policy.enforcement import EnforcementPoint, check_residency, enforce_residency
from gateway.policy.residency import TransferDecision, decide_transfer
from gateway.policy.schema import EnforcedMove, ResidencyPolicy

log = logging.getLogger(__name__)
LIVE = (SyncState.SYNCED, SyncState.INTENT_RECORDED)
# a candidate residency policy per dataset id (dry runs); None: the governing policy decides
Candidate = Callable[[str], ResidencyPolicy | None]


@dataclass(frozen=True, slots=True)
class ForbiddenTasks:
    """The live tasks of one dataset at one destination that residency no longer allows."""

    dataset_id: str
    destination_id: str
    destination_name: str
    region: str
    rule: str
    message: str
    tasks: tuple[tuple[str, int | None], ...]  # (asset id, Label Studio task id)
    policy: dict[str, Any] = field(default_factory=dict)

    def view(self) -> dict[str, Any]:
        return {
            "dataset_id": self.dataset_id,
            "destination": self.destination_name,
            "region": self.region,
            "rule": self.rule,
            "message": self.message,
            "tasks": [{"asset_id": a, "task_id": t} for a, t in self.tasks],
        }

    def describe(self) -> str:
        return (
            f"{len(self.tasks)} task(s) of dataset {self.dataset_id} at {self.destination_name} "
            f"({self.region}): {self.rule}"
        )


@dataclass
class WithdrawalReport:
    withdrawn: list[ForbiddenTasks] = field(default_factory=list)
    removed: int = 0
    pending: int = 0
    deferred: str | None = None  # why nothing was withdrawn this time (retried next time)


def forbidden_tasks(
    ctx: GatewayContext,
    session: Session,
    *,
    dataset_ids: Iterable[str] | None = None,
    destination_id: str | None = None,
    candidate: Candidate | None = None,
) -> list[ForbiddenTasks]:
    """Live tasks, grouped by dataset and destination, whose destination residency forbids."""
    stmt = (
        select(Asset.dataset_id, AssetSync.destination_id, AssetSync.asset_id, AssetSync.task_id)
        .join(Asset, col(Asset.id) == col(AssetSync.asset_id))
        .where(col(AssetSync.state).in_(LIVE))
        .order_by(col(Asset.dataset_id), col(AssetSync.destination_id), col(AssetSync.asset_id))
    )
    if dataset_ids is not None:
        stmt = stmt.where(col(Asset.dataset_id).in_(list(dataset_ids)))
    if destination_id is not None:
        stmt = stmt.where(AssetSync.destination_id == destination_id)
    groups: dict[tuple[str, str], list[tuple[str, int | None]]] = {}
    for dataset_id, dest_id, asset_id, task_id in session.exec(stmt).all():
        groups.setdefault((dataset_id, dest_id), []).append((asset_id, task_id))
    found = []
    for (dataset_id, dest_id), tasks in groups.items():
        destination = session.get(Destination, dest_id)
        if destination is None:
            continue
        decision, policy = _decide(ctx, session, dataset_id, destination, candidate)
        if decision.allowed:
            continue
        found.append(
            ForbiddenTasks(
                dataset_id,
                dest_id,
                destination.name,
                destination.region,
                decision.rule,
                decision.message,
                tuple(tasks),
                policy,
            )
        )
    return found


def withdrawn_by_policy(
    ctx: GatewayContext, session: Session, residency: ResidencyPolicy, dataset_ids: list[str]
) -> list[ForbiddenTasks]:
    """The live tasks a residency policy, once it governs these datasets, would withdraw."""
    governed = set(dataset_ids)
    return forbidden_tasks(
        ctx,
        session,
        dataset_ids=dataset_ids,
        candidate=lambda d: residency if d in governed else None,
    )


def _decide(
    ctx: GatewayContext,
    session: Session,
    dataset_id: str,
    destination: Destination,
    candidate: Candidate | None,
) -> tuple[TransferDecision, dict[str, Any]]:
    residency = candidate(dataset_id) if candidate is not None else None
    if residency is None:
        return check_residency(
            session,
            point=EnforcementPoint.SYNC,
            dataset_id=dataset_id,
            target_region=destination.region,
            transfer_basis=destination.transfer_basis,
            ctx=ctx,
        )
    decision = decide_transfer(
        residency,
        load_catalogue(),
        move=EnforcedMove.ANNOTATION,
        target_region=destination.region,
        transfer_basis=destination.transfer_basis,
        on=ctx.clock().date(),
    )
    return decision, {}


def enforce_or_withdraw(
    ctx: GatewayContext,
    dataset_id: str,
    destination: Destination,
    *,
    actor: Actor,
    retry: RetryPolicy | None = None,
) -> Clearance:
    """The sync's residency check: its clearance. Denied: withdraw the dataset's tasks at the
    destination first, then raise the violation (saying what was withdrawn)."""
    try:
        with transaction(ctx.engine) as session:
            return enforce_residency(
                ctx,
                session,
                point=EnforcementPoint.SYNC,
                dataset_id=dataset_id,
                target_region=destination.region,
                actor=actor,
                entity_type="destination",
                entity_id=destination.id,
                transfer_basis=destination.transfer_basis,
            )
    except ResidencyViolation as exc:
        done = withdraw_forbidden(ctx, destination, actor=actor, dataset_id=dataset_id, retry=retry)
        raise _with_withdrawal(exc, done) from None


def _with_withdrawal(exc: ResidencyViolation, done: WithdrawalReport) -> ResidencyViolation:
    tasks = sum(len(g.tasks) for g in done.withdrawn)
    if not tasks and not done.deferred:
        return exc  # nothing was there to withdraw
    if done.deferred:
        note = f"; its tasks there stay until they can be withdrawn ({done.deferred})"
    else:
        note = f"; {done.removed} task(s) withdrawn" + (
            f", {done.pending} removal(s) pending" if done.pending else ""
        )
    details = {
        **exc.details,
        "withdrawn_tasks": done.removed,
        "withdrawal_pending": tasks - done.removed,
    }
    if done.deferred:
        details["withdrawal_deferred"] = done.deferred
    return ResidencyViolation(exc.message + note, **details)


def withdraw_forbidden(
    ctx: GatewayContext,
    destination: Destination,
    *,
    actor: Actor,
    dataset_id: str | None = None,
    annotations_pulled: bool = False,
    retry: RetryPolicy | None = None,
) -> WithdrawalReport:
    """Withdraw the destination's tasks its datasets' residency no longer allows. Their
    annotations are pulled first (unless the caller just did); if that fails, nothing is
    withdrawn now (the image route already refuses the images) and the next run tries again."""
    report = WithdrawalReport()
    with transaction(ctx.engine) as session:
        groups = forbidden_tasks(
            ctx,
            session,
            dataset_ids=None if dataset_id is None else [dataset_id],
            destination_id=destination.id,
        )
    if not groups:
        return report
    if not annotations_pulled:
        try:
            pull_annotations(ctx, destination, actor=actor, retry=retry)
        except GatewayError as exc:
            report.deferred = f"annotations could not be pulled first: {exc.code}"
            log.warning("residency withdrawal at %s deferred: %s", destination.name, exc.code)
            return report
    for group in groups:
        _withdraw_group(ctx, group, report, actor=actor, retry=retry)
    return report


def _withdraw_group(
    ctx: GatewayContext,
    group: ForbiddenTasks,
    report: WithdrawalReport,
    *,
    actor: Actor,
    retry: RetryPolicy | None,
) -> None:
    reason = f"residency: {group.rule}"
    states: list[str] = []
    for asset_id, _task in group.tasks:
        with transaction(ctx.engine) as session:
            recipients = remove_asset_tasks(
                ctx, session, asset_id, reason, retry=retry, destination_id=group.destination_id
            )
        states += [str(r["state"]) for r in recipients]
    removed = states.count("removed")
    report.removed += removed
    report.pending += len(states) - removed
    report.withdrawn.append(group)
    with transaction(ctx.engine) as session:
        recorder(ctx, session, actor).record(
            Action.LABELSTUDIO_RESIDENCY_WITHDRAWN,
            entity=group.destination_id,
            dataset=group.dataset_id,
            inputs={"assets": [a for a, _ in group.tasks]},
            outputs={"removed": removed, "removal_pending": len(states) - removed},
            parameters={
                "rule": group.rule,
                "target_region": group.region,
                **{k: v for k, v in group.policy.items() if v is not None},
            },
        )
