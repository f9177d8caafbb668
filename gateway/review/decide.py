"""Reviewers' decisions, read back from Label Studio by task id (a webhook is only a hint).

For each open item with a task: every submitted annotation is read from Label Studio; one by
a Label Studio user who is not on the dataset's reviewer list is recorded (its own
`ignored` row and a ledger record) and changes nothing. A reviewer's decision:
- release: a sampled, released asset with nothing found is confirmed as it is. Otherwise
  (findings, or an asset withheld) the asset is withheld first (a finding on a released
  asset withdraws its annotation tasks, annotations kept, and opens an incident), then
  rendered again from the original with automatic and manual regions and leak-checked:
  released with a new redacted copy (and sent again to the annotation projects it was in),
  or rejected when the engine still refuses it;
- reject: never released again (withdrawn first when it was released);
- re-process: queued for the pipeline again (only where the original is still stored).
Where the original is gone only reject is accepted. Every decision closes the item, ends its
retention hold, closes its incident with the outcome, and is recorded: who (pseudonym), what
and why."""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlmodel import Session, select

from gateway.asset_states import transition
from gateway.core.context import GatewayContext
from gateway.core.db import transaction
from gateway.core.errors import GatewayError
from gateway.core.models import Asset, AssetState, AssetSync, Destination, SyncState
from gateway.datasets import get_dataset
from gateway.jobs import queue_redaction
from gateway.labelstudio.annotation_store import HeldAnnotation, held_annotation
from gateway.labelstudio.client import LabelStudioClient, RetryPolicy
from gateway.labelstudio.destinations import connect, get_destination
from gateway.labelstudio.removal import remove_asset_tasks
from gateway.labelstudio.sync import sync_dataset
from gateway.labelstudio.tables import Incident, IncidentKind
from gateway.labelstudio.task_model import TaskField, claimed
from gateway.lineage import Action, Actor, recorder
from gateway.pipeline import Redactor
from gateway.review.calibration import close_calibration
from gateway.review.labelconfig import ReviewAnswer, read_answer
from gateway.review.models import ReviewDecision, ReviewItem, ReviewReason
from gateway.review.project import is_reviewer, reviewer_pseudonym
from gateway.review.queue import open_items, review_project
from gateway.review.records import close_item, record_ignored, record_refusal
from gateway.review.rerender import rerender

log = logging.getLogger(__name__)
REVIEW_FINDING = "review-finding"


@dataclass
class ReviewPull:
    decided: dict[str, str] = field(default_factory=dict)  # item id -> decision
    ignored: list[int] = field(default_factory=list)  # Label Studio annotation ids
    refused: dict[str, str] = field(default_factory=dict)  # item id -> why
    resynced: list[str] = field(default_factory=list)  # assets sent again to annotators


def pull_decisions(
    ctx: GatewayContext,
    dataset_ref: str,
    *,
    redactor: Redactor,
    actor: Actor,
    retry: RetryPolicy | None = None,
) -> ReviewPull:
    with transaction(ctx.engine) as session:
        dataset = get_dataset(session, dataset_ref)
        destination = get_destination(session, review_project(session, dataset.id).destination_id)
        items = [i for i in open_items(session, dataset.id) if i.ls_task_id is not None]
    report = ReviewPull()
    client = connect(ctx, destination, retry=retry)
    try:
        for item in items:
            _pull_item(ctx, client, destination, item, report, redactor=redactor)
    finally:
        client.close()
    for asset_id in report.resynced:
        _send_again(ctx, asset_id, actor=actor, retry=retry)
    return report


def _pull_item(
    ctx: GatewayContext,
    client: LabelStudioClient,
    destination: Destination,
    item: ReviewItem,
    report: ReviewPull,
    *,
    redactor: Redactor,
) -> None:
    task = client.task(item.ls_task_id or 0)
    if task is None or claimed(task.data, TaskField.REVIEW_ITEM) != item.id:
        report.refused[item.id] = "the review task is not in Label Studio as the gateway made it"
        return
    decided = False
    for raw in sorted(task.annotations, key=lambda a: int(a.get("id") or 0)):
        try:
            held = held_annotation(raw, task_id=task.id)
        except GatewayError:
            continue
        if held.was_cancelled or _seen(ctx, item, held.ls_id):
            continue
        lead = raw.get("lead_time")
        lead_time = float(lead) if isinstance(lead, int | float) else None
        # after the decision, later annotations are still read: a non-reviewer's is recorded
        decided = _decide(ctx, destination, item, held, lead_time, report, redactor, decided)


def _seen(ctx: GatewayContext, item: ReviewItem, ls_id: int) -> bool:
    """Already acted on: decided, ignored, or refused (each annotation counts once)."""
    with transaction(ctx.engine) as session:
        fresh = session.get(ReviewItem, item.id)
        if fresh is not None and ls_id in (fresh.details or {}).get("refused", []):
            return True
        return (
            session.exec(
                select(ReviewItem).where(
                    ReviewItem.asset_id == item.asset_id,
                    ReviewItem.ls_annotation_id == ls_id,
                    ReviewItem.destination_id == item.destination_id,
                )
            ).first()
            is not None
        )


def _decide(
    ctx: GatewayContext,
    destination: Destination,
    item: ReviewItem,
    held: HeldAnnotation,
    lead_time: float | None,
    report: ReviewPull,
    redactor: Redactor,
    decided: bool,
) -> bool:
    """Act on one annotation; True once the item is decided (by this one or before)."""
    with transaction(ctx.engine) as session:
        asset = session.get(Asset, item.asset_id)
        assert asset is not None  # noqa: S101 (assets are never deleted, only their data)
        who = reviewer_pseudonym(
            ctx, session, item.dataset_id, destination.id, held.completed_by or "unknown"
        )
        answer = read_answer(held.result, width=asset.width or 1, height=asset.height or 1)
        if not is_reviewer(session, item.dataset_id, who):
            record_ignored(ctx, session, item, held, who, answer, lead_time)
            report.ignored.append(held.ls_id)
            return decided
    if decided:
        return True  # the first reviewer's decision stands
    if item.reason == ReviewReason.CALIBRATION and answer.decision is not None:
        report.decided[item.id] = close_calibration(ctx, item, held, who, answer, lead_time)
        return True  # a calibration image is only measured: no re-render, no release
    reviewer = Actor("reviewer", who)
    refusal = _refusal(item, asset, answer)
    if refusal is not None:
        report.refused[item.id] = refusal
        record_refusal(ctx, item, held.ls_id, who, answer, refusal)
        return False
    assert answer.decision is not None  # noqa: S101 (no decision is a refusal above)
    if not _claim(ctx, item, held.ls_id):
        return True  # another pull (the CLI, the service) is acting on this item now
    outcome = _apply(ctx, item, answer, reviewer, redactor, report)
    close_item(ctx, item, held, who, answer, outcome, lead_time, reviewer)
    report.decided[item.id] = outcome.value
    return True


CLAIM_SECONDS = 600  # a pull that died mid-decision leaves its claim; it lapses after this


def _claim(ctx: GatewayContext, item: ReviewItem, ls_id: int) -> bool:
    """Take the item for this decision, once: a concurrent pull sees the claim and leaves it."""
    now = ctx.clock()
    with transaction(ctx.engine) as session:
        row = session.get(ReviewItem, item.id, with_for_update=True)
        if row is None or row.decided_at is not None:
            return False
        claim = (row.details or {}).get("claim")
        if claim is not None:
            at = datetime.fromisoformat(claim["at"])
            if now - at < timedelta(seconds=CLAIM_SECONDS):
                return False
        row.details = {**row.details, "claim": {"annotation": ls_id, "at": now.isoformat()}}
        session.add(row)
        return True


def _refusal(item: ReviewItem, asset: Asset, answer: ReviewAnswer) -> str | None:
    if answer.decision is None:
        return "the annotation picks no decision"
    if answer.decision is ReviewDecision.REJECTED:
        return None
    if not item.original_available or asset.original_blob is None:
        return "the original was deleted by retention: only reject is possible"
    if answer.decision is ReviewDecision.REPROCESS and asset.state != AssetState.QUARANTINED:
        return "re-process is offered only for quarantined assets"
    return None


def _apply(
    ctx: GatewayContext,
    item: ReviewItem,
    answer: ReviewAnswer,
    reviewer: Actor,
    redactor: Redactor,
    report: ReviewPull,
) -> ReviewDecision:
    params = {"review_item": item.id, "review_reason": item.reason}
    with transaction(ctx.engine) as session:
        asset = session.get(Asset, item.asset_id)
        assert asset is not None  # noqa: S101
        was_released = asset.state == AssetState.RELEASED
        if was_released and answer.decision is ReviewDecision.RELEASED and not answer.boxes:
            return ReviewDecision.RELEASED  # sampled, nothing found: confirmed as it is
        if was_released:
            _withhold(ctx, session, asset, item, answer, reviewer)
    if was_released:  # its annotation tasks go before anything else (annotations kept)
        with transaction(ctx.engine) as session:
            remove_asset_tasks(ctx, session, item.asset_id, REVIEW_FINDING)
    if answer.decision is ReviewDecision.REJECTED:
        _reject(ctx, item.asset_id, reviewer, params)
        return ReviewDecision.REJECTED
    if answer.decision is ReviewDecision.REPROCESS:
        _requeue(ctx, item.asset_id, reviewer, params)
        return ReviewDecision.REPROCESS
    rendered = rerender(
        ctx, item.asset_id, answer.boxes, redactor=redactor, actor=reviewer, parameters=params
    )
    if not rendered.released:
        _reject(ctx, item.asset_id, reviewer, {**params, "leak_check": "failed"})
        return ReviewDecision.REJECTED
    report.resynced.append(item.asset_id)
    return ReviewDecision.RELEASED


def _withhold(
    ctx: GatewayContext,
    session: Session,
    asset: Asset,
    item: ReviewItem,
    answer: ReviewAnswer,
    reviewer: Actor,
) -> None:
    """A finding (or a reject) on a released asset: quarantine it and open an incident."""
    findings = {k: v for k, v in answer.findings().items() if v}
    transition(
        session,
        asset,
        AssetState.QUARANTINED,
        actor=reviewer,
        now=ctx.clock(),
        region=ctx.settings.region,
        reasons=[
            {
                "code": REVIEW_FINDING,
                "message": f"a reviewer found {findings or 'a reason to reject'}",
            }
        ],
        parameters={"review_item": item.id},
    )
    if not findings:
        return
    incident = Incident(
        id=str(uuid.uuid4()),
        asset_id=asset.id,
        kind=IncidentKind.REVIEW_FINDING.value,
        reason=f"a reviewer found identifiable content on a released image: {findings}",
        opened_at=ctx.clock(),
        details={"review_item": item.id, "findings": findings},
    )
    session.add(incident)
    fresh = session.get(ReviewItem, item.id)
    assert fresh is not None  # noqa: S101
    fresh.incident_id = item.incident_id = incident.id
    session.add(fresh)
    recorder(ctx, session, reviewer, now=incident.opened_at).record(
        Action.INCIDENT_OPENED,
        entity=incident.id,
        dataset=asset.dataset_id,
        inputs={"asset_id": asset.id},
        parameters={"kind": incident.kind, "findings": findings, "review_item": item.id},
    )


def _reject(ctx: GatewayContext, asset_id: str, reviewer: Actor, params: dict[str, Any]) -> None:
    with transaction(ctx.engine) as session:
        asset = session.get(Asset, asset_id)
        assert asset is not None  # noqa: S101
        transition(
            session,
            asset,
            AssetState.REJECTED,
            actor=reviewer,
            now=ctx.clock(),
            region=ctx.settings.region,
            reasons=[{"code": "review-rejected", "message": "rejected by a reviewer"}],
            parameters=params,
        )


def _requeue(ctx: GatewayContext, asset_id: str, reviewer: Actor, params: dict[str, Any]) -> None:
    now = ctx.clock()
    with transaction(ctx.engine) as session:
        asset = session.get(Asset, asset_id)
        assert asset is not None  # noqa: S101
        transition(
            session,
            asset,
            AssetState.PROCESSING,
            actor=reviewer,
            now=now,
            region=ctx.settings.region,
            parameters={"reprocess": "review", **params},
        )
        queue_redaction(ctx, session, asset_id, now=now)


def _send_again(
    ctx: GatewayContext, asset_id: str, *, actor: Actor, retry: RetryPolicy | None
) -> None:
    """A released again asset goes back to the annotation projects it was withdrawn from
    (a new task with the new copy; the annotations kept by the gateway stay with it)."""
    with transaction(ctx.engine) as session:
        asset = session.get(Asset, asset_id)
        rows = session.exec(
            select(AssetSync).where(
                AssetSync.asset_id == asset_id, AssetSync.state == SyncState.REMOVED
            )
        ).all()
        targets = [(r.destination_id, asset.dataset_id if asset else "") for r in rows]
        for row in rows:
            row.state, row.task_id, row.updated_at = SyncState.PENDING, None, ctx.clock()
            session.add(row)
    for destination_id, dataset_id in targets:
        try:
            sync_dataset(
                ctx,
                dataset_ref=dataset_id,
                destination_ref=destination_id,
                actor=actor,
                retry=retry,
            )
        except GatewayError as exc:  # the next sync sends it: the asset is released
            log.warning("re-sync after review failed: %s", exc.code)
