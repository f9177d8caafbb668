"""Annotations coming back from Label Studio (webhook or pull), stored with the annotator as
a keyed pseudonym (contract 5), and the annotators' privacy flag: a flagged image is
quarantined at once (its URL stops answering), an incident is opened (GDPR Art. 33 review),
and its tasks are pulled from Label Studio."""

from __future__ import annotations

import hmac
import uuid
from dataclasses import dataclass, field
from typing import Any

from sqlmodel import Session, col, select

from gateway.asset_states import transition
from gateway.context import GatewayContext
from gateway.db import transaction
from gateway.errors import InvalidRequest
from gateway.labelstudio.client import RetryPolicy
from gateway.labelstudio.config import privacy_flags
from gateway.labelstudio.destinations import connect, open_secrets
from gateway.labelstudio.errors import WebhookUnauthorised
from gateway.labelstudio.removal import remove_asset_tasks
from gateway.labelstudio.result_digest import result_sha256
from gateway.labelstudio.tables import Annotation, Incident, IncidentKind, LabelStudioProject
from gateway.lineage import Actor, append
from gateway.models import Asset, AssetState, AssetSync, Destination
from gateway.pseudonymisation import PseudonymField, pseudonym

WEBHOOK = Actor("system", "labelstudio-webhook")
FLAGGABLE = frozenset({AssetState.RELEASED, AssetState.ORIGINAL_DELETED})


@dataclass
class WebhookOutcome:
    stored: int = 0
    deleted: int = 0
    flagged_assets: list[str] = field(default_factory=list)


def check_webhook_secret(ctx: GatewayContext, destination: Destination, sent: str | None) -> None:
    expected = open_secrets(ctx, destination).webhook_secret
    if not sent or not hmac.compare_digest(sent.encode(), expected.encode()):
        raise WebhookUnauthorised("the webhook secret header is missing or wrong")


def handle_webhook(
    ctx: GatewayContext, session: Session, destination: Destination, payload: dict[str, Any]
) -> WebhookOutcome:
    """Store what one webhook call says, in the caller's transaction (fast: no network)."""
    outcome = WebhookOutcome()
    action = payload.get("action")
    if action in ("ANNOTATION_CREATED", "ANNOTATION_UPDATED"):
        annotation, task = payload.get("annotation"), payload.get("task") or {}
        if not isinstance(annotation, dict) or not isinstance(annotation.get("id"), int):
            raise InvalidRequest(f"{action} without an annotation id")
        if not isinstance(task, dict) or not isinstance(annotation.get("result") or [], list):
            raise InvalidRequest(f"{action} with a malformed task or result")
        flagged = store_annotation(ctx, session, destination, annotation, task_id=task.get("id"))
        outcome.stored += 1
        outcome.flagged_assets += flagged
    elif action == "ANNOTATIONS_DELETED":
        items = payload.get("annotations")
        if not isinstance(items, list) or not all(
            isinstance(i, dict) and isinstance(i.get("id"), int) for i in items
        ):
            raise InvalidRequest("ANNOTATIONS_DELETED needs a list of annotations with ids")
        for item in items:
            outcome.deleted += mark_deleted(ctx, session, destination, item["id"])
    return outcome


def store_annotation(
    ctx: GatewayContext,
    session: Session,
    destination: Destination,
    annotation: dict[str, Any],
    *,
    task_id: Any,
    actor: Actor = WEBHOOK,
) -> list[str]:
    """Upsert one annotation; returns the asset ids it flagged (empty: no flag)."""
    task_id = task_id if task_id is not None else annotation.get("task")
    sync = _sync_for_task(session, destination.id, task_id)
    if sync is None or "id" not in annotation:
        return []  # not a task the gateway made: nothing of ours to record
    asset = session.get(Asset, sync.asset_id)
    if asset is None:
        return []
    ls_id, now = int(annotation["id"]), ctx.clock()
    result = list(annotation.get("result") or [])
    row = session.exec(
        select(Annotation).where(
            Annotation.destination_id == destination.id, Annotation.ls_annotation_id == ls_id
        )
    ).first()
    created = row is None
    if row is None:
        row = Annotation(
            asset_id=asset.id,
            destination_id=destination.id,
            task_id=int(task_id),
            ls_annotation_id=ls_id,
            annotator="",
            result=[],
            created_at=now,
        )
    annotator = _annotator(ctx, session, asset, destination, annotation.get("completed_by"))
    cancelled = bool(annotation.get("was_cancelled"))
    if (
        not created
        and (row.result, row.was_cancelled, row.annotator)
        == (
            result,
            cancelled,
            annotator,
        )
        and row.deleted_at is None
    ):
        return []  # nothing new (a pull after the webhook already delivered it)
    row.annotator = annotator
    row.result, row.was_cancelled = result, cancelled
    row.updated_at, row.deleted_at = now, None
    session.add(row)
    digest = result_sha256(result)  # Label Studio's fractional numbers, kept as they are
    if actor is WEBHOOK:
        actor = Actor("annotator", annotator)  # pseudonymous: who made it, never who they are
    append(
        session,
        action="annotation.received" if created else "annotation.updated",
        entity_type="annotation",
        entity_id=f"{destination.id}:{ls_id}",
        dataset_id=asset.dataset_id,
        actor=actor,
        now=now,
        region=ctx.settings.region,
        inputs={"asset_id": asset.id, "task_id": int(task_id)},
        outputs={"result_sha256": digest, "regions": len(result)},
        parameters={"annotator": row.annotator, "was_cancelled": str(row.was_cancelled).lower()},
    )
    flags = privacy_flags(result)
    if flags and not row.was_cancelled and AssetState(asset.state) in FLAGGABLE:
        open_leak_incident(ctx, session, asset, destination, flags, row.annotator, actor=actor)
        return [asset.id]
    return []


def _sync_for_task(session: Session, destination_id: str, task_id: Any) -> AssetSync | None:
    if not isinstance(task_id, int):
        return None
    return session.exec(
        select(AssetSync).where(
            AssetSync.destination_id == destination_id, AssetSync.task_id == task_id
        )
    ).first()


def _annotator(
    ctx: GatewayContext, session: Session, asset: Asset, destination: Destination, who: Any
) -> str:
    user = who.get("id") if isinstance(who, dict) else who
    return pseudonym(
        ctx,
        session,
        dataset_id=asset.dataset_id,
        field=PseudonymField.ANNOTATOR,
        value=f"{destination.id}:{user}",
    )


def mark_deleted(
    ctx: GatewayContext, session: Session, destination: Destination, ls_id: int
) -> int:
    row = session.exec(
        select(Annotation).where(
            Annotation.destination_id == destination.id,
            Annotation.ls_annotation_id == ls_id,
            col(Annotation.deleted_at).is_(None),
        )
    ).first()
    if row is None:
        return 0
    now = ctx.clock()
    row.deleted_at = now
    session.add(row)
    asset = session.get(Asset, row.asset_id)
    append(
        session,
        action="annotation.deleted",
        entity_type="annotation",
        entity_id=f"{destination.id}:{ls_id}",
        dataset_id=asset.dataset_id if asset else None,
        actor=WEBHOOK,
        now=now,
        region=ctx.settings.region,
    )
    return 1


def open_leak_incident(
    ctx: GatewayContext,
    session: Session,
    asset: Asset,
    destination: Destination,
    flags: list[str],
    annotator: str,
    *,
    actor: Actor,
) -> Incident:
    now = ctx.clock()
    reason = "annotator flagged visible personal data: " + ", ".join(flags)
    transition(
        session,
        asset,
        AssetState.QUARANTINED,
        actor=actor,
        now=now,
        region=ctx.settings.region,
        reasons=[{"code": "annotator-leak-flag", "message": reason}],
        parameters={"destination_id": destination.id},
    )
    incident = Incident(
        id=str(uuid.uuid4()),
        asset_id=asset.id,
        kind=IncidentKind.ANNOTATOR_LEAK_FLAG.value,
        reason=reason,
        opened_at=now,
        details={"destination_id": destination.id, "flags": flags, "annotator": annotator},
    )
    session.add(incident)
    append(
        session,
        action="incident.opened",
        entity_type="incident",
        entity_id=incident.id,
        dataset_id=asset.dataset_id,
        actor=actor,
        now=now,
        region=ctx.settings.region,
        inputs={"asset_id": asset.id},
        parameters={"kind": incident.kind, "flags": flags, "annotator": annotator},
    )
    return incident


def withdraw_flagged(ctx: GatewayContext, asset_ids: list[str]) -> None:
    """Pull flagged assets' tasks from Label Studio (after the webhook has answered)."""
    for asset_id in asset_ids:
        with transaction(ctx.engine) as session:
            remove_asset_tasks(ctx, session, asset_id, "annotator-leak-flag")


@dataclass
class PullReport:
    tasks: int = 0
    stored: int = 0
    deleted: int = 0
    flagged: list[str] = field(default_factory=list)


def pull_annotations(
    ctx: GatewayContext,
    destination: Destination,
    *,
    actor: Actor,
    retry: RetryPolicy | None = None,
) -> PullReport:
    """Reconcile: read every task of the destination's projects and store what was missed."""
    report = PullReport()
    with transaction(ctx.engine) as session:
        projects = session.exec(
            select(LabelStudioProject).where(
                LabelStudioProject.destination_id == destination.id,
                col(LabelStudioProject.project_id).is_not(None),
            )
        ).all()
    client = connect(ctx, destination, retry=retry)
    try:
        for project in projects:
            for task in client.tasks(project.project_id or 0):
                report.tasks += 1
                with transaction(ctx.engine) as session:
                    _reconcile_task(
                        ctx, session, destination, task.id, task.annotations, report, actor
                    )
    finally:
        client.close()
    withdraw_flagged(ctx, report.flagged)
    return report


def _reconcile_task(
    ctx: GatewayContext,
    session: Session,
    destination: Destination,
    task_id: int,
    annotations: list[dict[str, Any]],
    report: PullReport,
    actor: Actor,
) -> None:
    seen = set()
    for annotation in annotations:
        seen.add(int(annotation["id"]))
        report.flagged += store_annotation(
            ctx, session, destination, annotation, task_id=task_id, actor=actor
        )
        report.stored += 1
    stale = session.exec(
        select(Annotation).where(
            Annotation.destination_id == destination.id,
            Annotation.task_id == task_id,
            col(Annotation.deleted_at).is_(None),
        )
    ).all()
    for row in stale:
        if row.ls_annotation_id not in seen:
            report.deleted += mark_deleted(ctx, session, destination, row.ls_annotation_id)
