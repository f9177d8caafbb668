"""Annotations coming back from Label Studio: webhooks are hints, Label Studio's API is the
source. A webhook is answered at once (Label Studio waits 1 s, inside the annotator's Submit);
afterwards each annotation it names is read back by id with the destination's token, checked
to be on a task the gateway made for that asset, and what Label Studio holds is stored
(`annotation_store`). A privacy flag in the hint quarantines the asset at once (the safe
direction); the incident is opened and the task withdrawn only when the read-back confirms the
flag. A deletion counts only when Label Studio answers 404. The pull (`annotations pull`, and
the service's scheduled reconcile) reads every task, stores what was missed, and retries the
failed events; one bad annotation never stops it."""

from __future__ import annotations

import hmac
import json
import logging
from dataclasses import dataclass, field
from typing import Any

from sqlmodel import Session, col, select

from gateway.core.context import GatewayContext
from gateway.core.db import transaction
from gateway.core.errors import GatewayError, InvalidRequest, NotFound
from gateway.core.models import Asset, AssetState, Destination
from gateway.labelstudio.annotation_store import (
    FLAGGABLE,
    WEBHOOK,
    UnusableAnnotation,
    held_annotation,
    is_id,
    mark_deleted,
    quarantine_for_flag,
    record_failure,
    store_annotation,
    sync_for_task,
    unresolved_failures,
)
from gateway.labelstudio.client import LabelStudioClient, RemoteTask, RetryPolicy
from gateway.labelstudio.config import privacy_flags
from gateway.labelstudio.destinations import connect, open_secrets
from gateway.labelstudio.errors import WebhookUnauthorised
from gateway.labelstudio.removal import remove_asset_tasks
from gateway.labelstudio.tables import Annotation, LabelStudioProject
from gateway.labelstudio.task_model import TaskField, claimed
from gateway.lineage import Actor

__all__ = ["PullReport", "WebhookHint", "pull_annotations", "store_annotation"]
log = logging.getLogger(__name__)
SAVED = ("ANNOTATION_CREATED", "ANNOTATION_UPDATED")
DELETED = "ANNOTATIONS_DELETED"


class NotConfirmed(GatewayError):
    """A webhook said something Label Studio's API does not confirm."""

    code, status, title = "labelstudio-does-not-confirm", 409, "Label Studio does not confirm"


@dataclass(frozen=True, slots=True)
class WebhookHint:
    """What a webhook claims: which annotations to read back, and whether it carries a flag."""

    action: str
    annotation_ids: tuple[int, ...] = ()
    task_id: int | None = None
    claimed_asset_id: str | None = None
    flags: tuple[str, ...] = ()


def check_webhook_secret(ctx: GatewayContext, destination: Destination, sent: str | None) -> None:
    expected = open_secrets(ctx, destination).webhook_secret
    if not sent or not hmac.compare_digest(sent.encode(), expected.encode()):
        raise WebhookUnauthorised("the webhook secret header is missing or wrong")


def authorise_webhook(ctx: GatewayContext, destination_id: str, sent: str | None) -> None:
    """Before the body is read: the destination exists and the secret header is its own."""
    with transaction(ctx.engine) as session:
        destination = session.get(Destination, destination_id)
        if destination is None:
            raise NotFound("no such destination")
        check_webhook_secret(ctx, destination, sent)


def parse_hint(body: bytes) -> WebhookHint:
    """The ids a webhook names (InvalidRequest when it is not Label Studio's shape)."""
    try:
        payload = json.loads(body)
    except (ValueError, RecursionError):
        raise InvalidRequest("the webhook body is not JSON") from None
    if not isinstance(payload, dict) or not isinstance(payload.get("action"), str):
        raise InvalidRequest("the webhook body names no action")
    action = payload["action"]
    if action in SAVED:
        annotation, task = payload.get("annotation"), payload.get("task") or {}
        if not isinstance(annotation, dict) or not is_id(annotation.get("id")):
            raise InvalidRequest(f"{action} without an annotation id")
        result = annotation.get("result") or []
        if not isinstance(task, dict) or not isinstance(result, list):
            raise InvalidRequest(f"{action} with a malformed task or result")
        data = task.get("data") if isinstance(task.get("data"), dict) else {}
        claimed_asset = claimed(data, TaskField.ASSET_ID)
        return WebhookHint(
            action=action,
            annotation_ids=(annotation["id"],),
            task_id=task["id"] if is_id(task.get("id")) else None,
            claimed_asset_id=claimed_asset if isinstance(claimed_asset, str) else None,
            flags=tuple(privacy_flags([r for r in result if isinstance(r, dict)])),
        )
    if action == DELETED:
        items = payload.get("annotations")
        if not isinstance(items, list) or not all(
            isinstance(i, dict) and is_id(i.get("id")) for i in items
        ):
            raise InvalidRequest("ANNOTATIONS_DELETED needs a list of annotations with ids")
        return WebhookHint(action=action, annotation_ids=tuple(i["id"] for i in items))
    return WebhookHint(action=action)  # an action the gateway does not subscribe to


def accept_hint(ctx: GatewayContext, destination_id: str, hint: WebhookHint) -> list[str]:
    """What may happen before the read-back: a flag quarantines its asset at once, when the
    task is one the gateway synced for the asset the payload names. Returns those assets."""
    if not hint.flags or hint.task_id is None:
        return []
    with transaction(ctx.engine) as session:
        sync = sync_for_task(session, destination_id, hint.task_id)
        destination = session.get(Destination, destination_id)
        if sync is None or destination is None or hint.claimed_asset_id != sync.asset_id:
            return []
        asset = session.get(Asset, sync.asset_id)
        if asset is None or AssetState(asset.state) not in FLAGGABLE:
            return []
        quarantine_for_flag(
            ctx, session, asset, destination, list(hint.flags), actor=WEBHOOK, confirmed=False
        )
        return [asset.id]


@dataclass
class HintOutcome:
    stored: int = 0
    deleted: int = 0
    refused: dict[int, str] = field(default_factory=dict)  # annotation id -> reason code
    flagged: list[str] = field(default_factory=list)


def confirm_hint(
    ctx: GatewayContext,
    destination_id: str,
    hint: WebhookHint,
    *,
    retry: RetryPolicy | None = None,
) -> HintOutcome:
    """After the answer: read each named annotation back and act on what Label Studio holds."""
    outcome = HintOutcome()
    if not hint.annotation_ids:
        return outcome
    with transaction(ctx.engine) as session:
        destination = session.get(Destination, destination_id)
    if destination is None:
        return outcome
    client = connect(ctx, destination, retry=retry)
    try:
        for ls_id in hint.annotation_ids:
            _confirm_one(ctx, client, destination, hint, ls_id, outcome)
    finally:
        client.close()
    withdraw_flagged(ctx, outcome.flagged)
    return outcome


def _confirm_one(
    ctx: GatewayContext,
    client: LabelStudioClient,
    destination: Destination,
    hint: WebhookHint,
    ls_id: int,
    outcome: HintOutcome,
) -> None:
    try:
        raw = client.annotation(ls_id)
    except GatewayError as exc:  # Label Studio unreachable: the pull tries again
        _refuse(ctx, destination, hint, ls_id, exc, outcome)
        return
    if hint.action == DELETED:
        if raw is None:
            with transaction(ctx.engine) as session:
                outcome.deleted += mark_deleted(ctx, session, destination, ls_id)
        else:
            still = NotConfirmed("Label Studio still holds the annotation: deletion ignored")
            _refuse(ctx, destination, hint, ls_id, still, outcome, resolution="ignored")
        return
    if raw is None:
        absent = NotConfirmed("Label Studio holds no annotation with this id")
        _refuse(ctx, destination, hint, ls_id, absent, outcome)
        return
    try:
        flagged = store_held(ctx, client, destination, raw, actor=WEBHOOK)
    except GatewayError as exc:
        _refuse(ctx, destination, hint, ls_id, exc, outcome)
        return
    outcome.stored += 1
    outcome.flagged += flagged
    result = raw.get("result")
    items = result if isinstance(result, list) else []
    confirmed = privacy_flags([r for r in items if isinstance(r, dict)])
    if hint.flags and (not confirmed or raw.get("was_cancelled")):
        unflagged = NotConfirmed("the annotation Label Studio holds carries no privacy flag")
        _refuse(ctx, destination, hint, ls_id, unflagged, outcome, resolution="not-confirmed")


def store_held(
    ctx: GatewayContext,
    client: LabelStudioClient,
    destination: Destination,
    raw: dict[str, Any],
    *,
    actor: Actor,
) -> list[str]:
    """Store an annotation read from Label Studio, once its task (read back too) is checked
    to be the asset's. Raises typed errors; keeps nothing of `raw` but the kept fields."""
    held = held_annotation(raw)
    task = client.task(held.task_id)
    if task is None:
        raise UnusableAnnotation("the annotation's task is no longer in Label Studio")
    with transaction(ctx.engine) as session:
        return store_annotation(ctx, session, destination, held, task_data=task.data, actor=actor)


def _refuse(
    ctx: GatewayContext,
    destination: Destination,
    hint: WebhookHint,
    ls_id: int,
    error: GatewayError,
    outcome: HintOutcome,
    *,
    resolution: str | None = None,
) -> None:
    outcome.refused[ls_id] = error.code
    log.info("webhook %s for annotation %s not acted on: %s", hint.action, ls_id, error.code)
    with transaction(ctx.engine) as session:
        record_failure(
            ctx,
            session,
            destination.id,
            action=hint.action,
            ls_annotation_id=ls_id,
            task_id=hint.task_id,
            error=error,
            resolution=resolution,
        )


def withdraw_flagged(ctx: GatewayContext, asset_ids: list[str]) -> None:
    """Pull flagged assets' tasks from Label Studio (annotations kept first, see removal)."""
    for asset_id in dict.fromkeys(asset_ids):
        with transaction(ctx.engine) as session:
            remove_asset_tasks(ctx, session, asset_id, "annotator-leak-flag")


@dataclass
class PullReport:
    tasks: int = 0
    stored: int = 0
    deleted: int = 0
    flagged: list[str] = field(default_factory=list)
    failed: dict[int, str] = field(default_factory=dict)  # annotation id -> error code


def pull_annotations(
    ctx: GatewayContext,
    destination: Destination,
    *,
    actor: Actor,
    retry: RetryPolicy | None = None,
) -> PullReport:
    """Reconcile: read every task of the destination's projects, store what was missed, and
    retry the failed events; an annotation that fails is recorded and the pull goes on."""
    report = PullReport()
    with transaction(ctx.engine) as session:
        projects = session.exec(
            select(LabelStudioProject).where(
                LabelStudioProject.destination_id == destination.id,
                col(LabelStudioProject.project_id).is_not(None),
            )
        ).all()
    client = connect(ctx, destination, retry=retry)
    seen: set[int] = set()
    try:
        for project in projects:
            for task in client.tasks(project.project_id or 0):
                report.tasks += 1
                _pull_task(ctx, destination, task, report, actor, seen)
        _retry_failures(ctx, client, destination, report, actor, seen)
    finally:
        client.close()
    withdraw_flagged(ctx, report.flagged)
    return report


def _pull_task(
    ctx: GatewayContext,
    destination: Destination,
    task: RemoteTask,
    report: PullReport,
    actor: Actor,
    seen: set[int],
) -> None:
    for raw in task.annotations:
        ls_id = raw.get("id")
        if is_id(ls_id):
            seen.add(ls_id)
        try:
            held = held_annotation(raw, task_id=task.id)
            with transaction(ctx.engine) as session:
                report.flagged += store_annotation(
                    ctx, session, destination, held, task_data=task.data, actor=actor
                )
            report.stored += 1
        except GatewayError as exc:
            _pull_failed(ctx, destination, ls_id, task.id, exc, report)
    with transaction(ctx.engine) as session:
        report.deleted += _mark_missing(ctx, session, destination, task.id, seen, actor)


def _mark_missing(
    ctx: GatewayContext,
    session: Session,
    destination: Destination,
    task_id: int,
    seen: set[int],
    actor: Actor,
) -> int:
    """Annotations the task no longer lists (Label Studio's listing is the read-back)."""
    rows = session.exec(
        select(Annotation).where(
            Annotation.destination_id == destination.id,
            Annotation.task_id == task_id,
            col(Annotation.deleted_at).is_(None),
        )
    ).all()
    stale = [r.ls_annotation_id for r in rows if r.ls_annotation_id not in seen]
    return sum(mark_deleted(ctx, session, destination, i, actor=actor) for i in stale)


def _retry_failures(
    ctx: GatewayContext,
    client: LabelStudioClient,
    destination: Destination,
    report: PullReport,
    actor: Actor,
    seen: set[int],
) -> None:
    """Failed events the task listing did not settle: read each back by id."""
    with transaction(ctx.engine) as session:
        pending = {
            f.ls_annotation_id: f.task_id for f in unresolved_failures(session, destination.id)
        }
    for ls_id, task_id in pending.items():
        if ls_id in seen:
            continue
        try:
            raw = client.annotation(ls_id)
            if raw is None:
                with transaction(ctx.engine) as session:
                    report.deleted += mark_deleted(ctx, session, destination, ls_id, actor=actor)
                continue
            report.flagged += store_held(ctx, client, destination, raw, actor=actor)
            report.stored += 1
        except GatewayError as exc:
            _pull_failed(ctx, destination, ls_id, task_id, exc, report)


def _pull_failed(
    ctx: GatewayContext,
    destination: Destination,
    ls_id: Any,
    task_id: int | None,
    error: GatewayError,
    report: PullReport,
) -> None:
    key = ls_id if is_id(ls_id) else 0
    report.failed[key] = error.code
    with transaction(ctx.engine) as session:
        record_failure(
            ctx,
            session,
            destination.id,
            action="pull",
            ls_annotation_id=key,
            task_id=task_id,
            error=error,
        )
