"""What a review decision leaves behind: the item closed (who, what, findings, Label Studio's
lead time), its retention hold ended, its incidents closed with the outcome, and the ledger
records; and the traces of decisions that changed nothing (ignored, refused)."""

from __future__ import annotations

import uuid

from sqlmodel import Session, col, select

from gateway.core.context import GatewayContext
from gateway.core.db import transaction
from gateway.core.models import Asset
from gateway.labelstudio.annotation_store import HeldAnnotation
from gateway.labelstudio.tables import Incident
from gateway.lineage import Action, Actor, recorder
from gateway.review.candidates import drop_reviewed_candidate
from gateway.review.labelconfig import ReviewAnswer
from gateway.review.models import ReviewDecision, ReviewItem
from gateway.review.queue import end_hold


def close_item(
    ctx: GatewayContext,
    item: ReviewItem,
    held: HeldAnnotation,
    who: str,
    answer: ReviewAnswer,
    outcome: ReviewDecision,
    lead_time: float | None,
    reviewer: Actor,
) -> None:
    now = ctx.clock()
    with transaction(ctx.engine) as session:
        row = session.get(ReviewItem, item.id)
        asset = session.get(Asset, item.asset_id)
        assert row is not None and asset is not None  # noqa: S101
        row.decided_at, row.decision, row.reviewer = now, outcome.value, who
        row.findings, row.lead_time_seconds = answer.findings(), lead_time
        row.ls_annotation_id = held.ls_id
        kept = {k: v for k, v in row.details.items() if k != "claim"}
        row.details = {**kept, "requested": (answer.decision or outcome).value}
        session.add(row)
        end_hold(ctx, session, row, actor=reviewer)
        drop_reviewed_candidate(ctx, session, row)
        close_incident(ctx, session, row, outcome, reviewer)
        recorder(ctx, session, reviewer, now=now).record(
            Action.REVIEW_DECIDED,
            entity=row.asset_id,
            dataset=row.dataset_id,
            outputs={"redacted_sha256": asset.redacted_sha256 or "", "state": asset.state},
            parameters={
                "review_item": row.id,
                "reviewer": who,
                "decision": outcome.value,
                "requested": (answer.decision or outcome).value,
                "reason": row.reason,
                "findings": row.findings,
                "task_id": row.ls_task_id or 0,
                "annotation_id": held.ls_id,
            },
        )


def close_incident(
    ctx: GatewayContext, session: Session, item: ReviewItem, outcome: ReviewDecision, actor: Actor
) -> None:
    incidents = session.exec(
        select(Incident).where(
            Incident.asset_id == item.asset_id, col(Incident.closed_at).is_(None)
        )
    ).all()
    for incident in incidents:
        incident.closed_at = ctx.clock()
        incident.details = {**incident.details, "outcome": outcome.value, "review_item": item.id}
        session.add(incident)
        recorder(ctx, session, actor, now=incident.closed_at).record(
            Action.INCIDENT_CLOSED,
            entity=incident.id,
            dataset=item.dataset_id,
            parameters={"outcome": outcome.value, "review_item": item.id},
        )


def record_ignored(
    ctx: GatewayContext,
    session: Session,
    item: ReviewItem,
    held: HeldAnnotation,
    who: str,
    answer: ReviewAnswer,
    lead_time: float | None,
) -> None:
    now = ctx.clock()
    session.add(
        ReviewItem(
            id=str(uuid.uuid4()),
            dataset_id=item.dataset_id,
            asset_id=item.asset_id,
            reason=item.reason,
            sample_ref=item.sample_ref,
            opened_at=item.opened_at,
            decided_at=now,
            decision=ReviewDecision.IGNORED.value,
            reviewer=who,
            findings=answer.findings(),
            lead_time_seconds=lead_time,
            policy_version_id=item.policy_version_id,
            destination_id=item.destination_id,
            ls_task_id=item.ls_task_id,
            ls_annotation_id=held.ls_id,
            original_available=item.original_available,
            details={"review_item": item.id, "why": "not a reviewer of this dataset"},
        )
    )
    recorder(ctx, session, Actor("annotator", who), now=now).record(
        Action.REVIEW_DECISION_IGNORED,
        entity=item.asset_id,
        dataset=item.dataset_id,
        parameters={
            "review_item": item.id,
            "by": who,
            "why": "not a reviewer of this dataset",
            "annotation_id": held.ls_id,
        },
    )


def record_refusal(
    ctx: GatewayContext, item: ReviewItem, ls_id: int, who: str, answer: ReviewAnswer, why: str
) -> None:
    with transaction(ctx.engine) as session:
        fresh = session.get(ReviewItem, item.id)
        assert fresh is not None  # noqa: S101
        fresh.details = {**fresh.details, "refused": [*fresh.details.get("refused", []), ls_id]}
        session.add(fresh)
        recorder(ctx, session, Actor("reviewer", who)).record(
            Action.REVIEW_DECISION_REFUSED,
            entity=item.asset_id,
            dataset=item.dataset_id,
            parameters={
                "review_item": item.id,
                "requested": answer.decision.value if answer.decision else "",
                "why": why,
                "annotation_id": ls_id,
            },
        )
