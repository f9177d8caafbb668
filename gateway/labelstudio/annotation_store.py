"""Storing what Label Studio holds: one annotation's result (exactly as received), its ids and
the annotator as a keyed pseudonym, never the raw object (Label Studio's carry
the annotator's e-mail in `created_username`). A confirmed privacy flag quarantines the asset
and opens an incident. Annotations that cannot be stored become failed events (with a reason
code and our own message, nothing of the annotation), picked up again by the pull."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypeGuard

from sqlmodel import Session, col, select

from gateway.asset_states import transition
from gateway.core.context import GatewayContext
from gateway.core.errors import GatewayError
from gateway.core.models import Asset, AssetState, AssetSync, Destination
from gateway.labelstudio.config import privacy_flags
from gateway.labelstudio.result_digest import result_sha256
from gateway.labelstudio.tables import (
    Annotation,
    AnnotationFailure,
    Incident,
    IncidentKind,
)
from gateway.labelstudio.task_model import TaskField, claimed
from gateway.lineage import Action, Actor, recorder
from gateway.pseudonymisation.policy import PseudonymField
from gateway.pseudonymisation.task_meta import pseudonym
from gateway.pseudonymisation.upsert import insert_if_absent

WEBHOOK = Actor("system", "labelstudio-webhook")
# "original deleted" is still a lifecycle state here (the ls-state branch moves it to a field)
FLAGGABLE = frozenset({AssetState.RELEASED})
LEAK_FLAG = "annotator-leak-flag"
GONE = frozenset({AssetState.ERASED, AssetState.EXPIRED})


class UnusableAnnotation(GatewayError):
    """Label Studio's annotation is not one the gateway can store (no id, no task, a result
    that is not a list, a task that is not the asset's)."""

    code, status, title = "annotation-unusable", 422, "Annotation cannot be stored"


@dataclass(frozen=True, slots=True)
class HeldAnnotation:
    """The fields the gateway keeps of a Label Studio annotation, and nothing else."""

    ls_id: int
    task_id: int
    result: list[Any]
    was_cancelled: bool
    completed_by: int | str | None


def held_annotation(raw: Mapping[str, Any], *, task_id: Any = None) -> HeldAnnotation:
    """Pick the kept fields out of Label Studio's annotation object (or raise)."""
    ls_id, task = raw.get("id"), task_id if task_id is not None else raw.get("task")
    if isinstance(task, Mapping):
        task = task.get("id")
    if not is_id(ls_id) or not is_id(task):
        raise UnusableAnnotation("the annotation names no integer id or task id")
    result = raw.get("result")
    if result is None:
        result = []
    if not isinstance(result, list):
        raise UnusableAnnotation("the annotation's result is not a list", annotation=ls_id)
    who = raw.get("completed_by")
    if isinstance(who, Mapping):
        who = who.get("id")
    return HeldAnnotation(
        ls_id=int(ls_id),
        task_id=int(task),
        result=result,
        was_cancelled=bool(raw.get("was_cancelled")),
        completed_by=who if isinstance(who, int | str) and not isinstance(who, bool) else None,
    )


def is_id(value: Any) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def sync_for_task(session: Session, destination_id: str, task_id: int) -> AssetSync | None:
    return session.exec(
        select(AssetSync).where(
            AssetSync.destination_id == destination_id, AssetSync.task_id == task_id
        )
    ).first()


def store_annotation(
    ctx: GatewayContext,
    session: Session,
    destination: Destination,
    annotation: Mapping[str, Any] | HeldAnnotation,
    *,
    task_id: Any = None,
    task_data: Mapping[str, Any] | None = None,
    actor: Actor = WEBHOOK,
) -> list[str]:
    """Upsert one annotation Label Studio holds; returns the asset ids it flagged.

    `task_data`, when given, is the task's data as Label Studio holds it: its gateway asset
    id must be the one the gateway synced to that task. Raises UnusableAnnotation or
    UnrepresentableAnnotation before changing anything."""
    held = annotation if isinstance(annotation, HeldAnnotation) else held_annotation(annotation)
    if task_id is not None and not isinstance(annotation, HeldAnnotation):
        held = held_annotation(annotation, task_id=task_id)
    sync = sync_for_task(session, destination.id, held.task_id)
    if sync is None:
        return []  # not a task the gateway made: nothing of ours to record
    if task_data is not None and claimed(task_data, TaskField.ASSET_ID) != sync.asset_id:
        raise UnusableAnnotation(
            "the task in Label Studio is not the asset the gateway synced to it",
            task=held.task_id,
        )
    asset = session.get(Asset, sync.asset_id)
    if asset is None or AssetState(asset.state) in GONE:
        return []  # erased or expired: its derived data went with it and does not come back
    digest = result_sha256(held.result)  # before anything changes: it may refuse the numbers
    annotator = _annotator(ctx, session, asset, destination, held.completed_by)
    now = ctx.clock()
    # The webhook's read-back and the pull may store the same annotation at once: claim the
    # row first (insert-if-absent waits for a concurrent insert), then work on it under a lock,
    # so the second writer sees the first one's row and records nothing twice.
    created = insert_if_absent(
        session,
        Annotation,
        {
            "asset_id": asset.id,
            "destination_id": destination.id,
            "task_id": held.task_id,
            "ls_annotation_id": held.ls_id,
            "annotator": annotator,
            "result": [],
            "was_cancelled": False,
            "created_at": now,
            "updated_at": now,
        },
    )
    row = _row(session, destination.id, held.ls_id, lock=True)
    if row is None:  # pragma: no cover - the insert above or a committed writer made it
        raise UnusableAnnotation("the annotation's row could not be claimed", annotation=held.ls_id)
    if not created and (row.result, row.was_cancelled, row.annotator, row.deleted_at) == (
        held.result,
        held.was_cancelled,
        annotator,
        None,
    ):
        resolve_failures(session, destination.id, held.ls_id, "stored", now=now)
        return []  # nothing new (a pull after the webhook already delivered it)
    row.annotator, row.result, row.was_cancelled = annotator, held.result, held.was_cancelled
    row.updated_at, row.deleted_at = now, None
    session.add(row)
    if actor is WEBHOOK:
        actor = Actor("annotator", annotator)  # pseudonymous: who made it, never who they are
    recorder(ctx, session, actor, now=now).record(
        Action.ANNOTATION_RECEIVED if created else Action.ANNOTATION_UPDATED,
        entity=f"{destination.id}:{held.ls_id}",
        dataset=asset.dataset_id,
        inputs={"asset_id": asset.id, "task_id": held.task_id},
        outputs={"result_sha256": digest, "regions": len(held.result)},
        parameters={"annotator": annotator, "was_cancelled": str(held.was_cancelled).lower()},
    )
    resolve_failures(session, destination.id, held.ls_id, "stored", now=now)
    flags = privacy_flags([r for r in held.result if isinstance(r, dict)])
    if flags and not held.was_cancelled:
        return confirm_flag(ctx, session, asset, destination, flags, annotator, actor=actor)
    return []


def _row(
    session: Session, destination_id: str, ls_id: int, *, lock: bool = False
) -> Annotation | None:
    query = select(Annotation).where(
        Annotation.destination_id == destination_id, Annotation.ls_annotation_id == ls_id
    )
    if lock:  # a row lock on PostgreSQL; SQLite's writers are serialised by BEGIN IMMEDIATE
        query = query.with_for_update()
    return session.exec(query).first()


def _annotator(
    ctx: GatewayContext, session: Session, asset: Asset, destination: Destination, who: Any
) -> str:
    return pseudonym(
        ctx,
        session,
        dataset_id=asset.dataset_id,
        field=PseudonymField.ANNOTATOR,
        value=f"{destination.id}:{who}",
    )


def confirm_flag(
    ctx: GatewayContext,
    session: Session,
    asset: Asset,
    destination: Destination,
    flags: list[str],
    annotator: str,
    *,
    actor: Actor,
) -> list[str]:
    """A flag Label Studio holds: quarantine (unless the webhook's hint already did), open the
    incident once, and name the asset for withdrawal."""
    state = AssetState(asset.state)
    if state in FLAGGABLE:
        quarantine_for_flag(ctx, session, asset, destination, flags, actor=actor)
    elif state is not AssetState.QUARANTINED:
        return []  # rejected, erased, expired: nothing is served any more
    open_incident = session.exec(
        select(Incident).where(
            Incident.asset_id == asset.id,
            Incident.kind == IncidentKind.ANNOTATOR_LEAK_FLAG.value,
            col(Incident.closed_at).is_(None),
        )
    ).first()
    if open_incident is None:
        open_leak_incident(ctx, session, asset, destination, flags, annotator, actor=actor)
    return [asset.id]


def quarantine_for_flag(
    ctx: GatewayContext,
    session: Session,
    asset: Asset,
    destination: Destination,
    flags: list[str],
    *,
    actor: Actor,
    confirmed: bool = True,
) -> None:
    reason = "annotator flagged visible personal data: " + ", ".join(flags)
    if not confirmed:
        reason += " (from the webhook; read back from Label Studio before the task is withdrawn)"
    transition(
        session,
        asset,
        AssetState.QUARANTINED,
        actor=actor,
        now=ctx.clock(),
        region=ctx.settings.region,
        reasons=[{"code": LEAK_FLAG, "message": reason}],
        parameters={
            "destination_id": destination.id,
            "flag_read_back": "confirmed" if confirmed else "pending",
        },
    )


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
    incident = Incident(
        id=str(uuid.uuid4()),
        asset_id=asset.id,
        kind=IncidentKind.ANNOTATOR_LEAK_FLAG.value,
        reason="annotator flagged visible personal data: " + ", ".join(flags),
        opened_at=now,
        details={"destination_id": destination.id, "flags": flags, "annotator": annotator},
    )
    session.add(incident)
    recorder(ctx, session, actor, now=now).record(
        Action.INCIDENT_OPENED,
        entity=incident.id,
        dataset=asset.dataset_id,
        inputs={"asset_id": asset.id},
        parameters={"kind": incident.kind, "flags": flags, "annotator": annotator},
    )
    return incident


def mark_deleted(
    ctx: GatewayContext,
    session: Session,
    destination: Destination,
    ls_id: int,
    *,
    actor: Actor = WEBHOOK,
) -> int:
    """Record that Label Studio no longer holds the annotation (only after reading it back)."""
    row = _row(session, destination.id, ls_id, lock=True)
    now = ctx.clock()
    resolve_failures(session, destination.id, ls_id, "absent-in-labelstudio", now=now)
    if row is None or row.deleted_at is not None:
        return 0
    row.deleted_at = now
    session.add(row)
    asset = session.get(Asset, row.asset_id)
    recorder(ctx, session, actor, now=now).record(
        Action.ANNOTATION_DELETED,
        entity=f"{destination.id}:{ls_id}",
        dataset=asset.dataset_id if asset else None,
    )
    return 1


def record_failure(
    ctx: GatewayContext,
    session: Session,
    destination_id: str,
    *,
    action: str,
    ls_annotation_id: int,
    task_id: int | None,
    error: GatewayError,
    resolution: str | None = None,
) -> AnnotationFailure:
    """A failed (or refused) annotation event: our code and message only, never its content.
    The same unresolved failure seen again counts an attempt instead of adding a row."""
    now = ctx.clock()
    if resolution is None:
        for known in unresolved_failures(session, destination_id, ls_annotation_id):
            if known.code == error.code:
                known.attempts += 1
                session.add(known)
                return known
    failure = AnnotationFailure(
        destination_id=destination_id,
        action=action[:32],
        ls_annotation_id=ls_annotation_id,
        task_id=task_id,
        code=error.code[:64],
        reason=error.message[:500],
        received_at=now,
        resolved_at=now if resolution else None,
        resolution=resolution,
    )
    session.add(failure)
    return failure


def resolve_failures(
    session: Session, destination_id: str, ls_id: int, resolution: str, *, now: Any
) -> None:
    for failure in unresolved_failures(session, destination_id, ls_id):
        failure.resolved_at, failure.resolution = now, resolution
        session.add(failure)


def unresolved_failures(
    session: Session, destination_id: str, ls_id: int | None = None
) -> list[AnnotationFailure]:
    query = select(AnnotationFailure).where(
        AnnotationFailure.destination_id == destination_id,
        col(AnnotationFailure.resolved_at).is_(None),
    )
    if ls_id is not None:
        query = query.where(AnnotationFailure.ls_annotation_id == ls_id)
    return list(session.exec(query).all())


def keep_task_annotations(
    ctx: GatewayContext,
    session: Session,
    destination: Destination,
    task_id: int,
    task_data: Mapping[str, Any],
    annotations: list[dict[str, Any]],
    *,
    actor: Actor,
) -> int:
    """Before a task leaves Label Studio: store every annotation it holds (in the caller's
    transaction). One that cannot be stored is recorded as lost with the task; the removal
    goes on (privacy first). Returns how many were stored or already held."""
    kept = 0
    for raw in annotations:
        try:
            held = held_annotation(raw, task_id=task_id)
            store_annotation(ctx, session, destination, held, task_data=task_data, actor=actor)
            kept += 1
        except GatewayError as exc:
            ls_id = raw.get("id")
            record_failure(
                ctx,
                session,
                destination.id,
                action="task-removal",
                ls_annotation_id=ls_id if is_id(ls_id) else 0,
                task_id=task_id,
                error=exc,
                resolution="lost-with-the-task",
            )
    return kept
