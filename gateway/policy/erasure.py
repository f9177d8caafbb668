"""Erasure requests (GDPR Art. 17) and their register.

A request names a dataset and either a subject id or an asset. The subject id is turned into
its keyed pseudonym at once (the register and lineage keep only that); the subject's assets
are found by recomputing each asset's subject pseudonym from its sealed metadata. Each asset
loses its original, redacted copy, detections, sealed metadata, vault entries and Label
Studio tasks, and goes to `erased`. The request is due one month after receipt (Art. 12(3))
and stays open while any recipient (a Label Studio destination, Art. 19) is still pending.
"""

from __future__ import annotations

import calendar
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlmodel import Session, col, delete, select

from gateway.asset_states import note_original_gone, transition
from gateway.core.clock import as_utc
from gateway.core.context import GatewayContext
from gateway.core.db import transaction
from gateway.core.errors import Conflict, IntegrityFailure, InvalidRequest, KeyUnavailable, NotFound
from gateway.core.models import Asset, AssetState
from gateway.datasets import get_dataset
from gateway.lineage import Action, Actor, recorder
from gateway.policy.derived import TaskRemover, default_task_remover, delete_blob, delete_detections
from gateway.policy.tables import ErasureRequest, ErasureState
from gateway.pseudonymisation.dataset_secrets import SecretPurpose, dataset_secret
from gateway.pseudonymisation.policy import PseudonymField
from gateway.pseudonymisation.pseudonyms import compute_pseudonym
from gateway.pseudonymisation.tables import VaultEntry
from gateway.pseudonymisation.task_meta import identifiers, private_metadata, pseudonym
from gateway.review.candidates import drop_candidate


def one_month_later(moment: datetime) -> datetime:
    """Art. 12(3): one month, same day of the next month (clamped to its last day)."""
    year, month = (moment.year + 1, 1) if moment.month == 12 else (moment.year, moment.month + 1)
    day = min(moment.day, calendar.monthrange(year, month)[1])
    return moment.replace(year=year, month=month, day=day)


@dataclass(frozen=True, slots=True)
class ErasureOutcome:
    request: ErasureRequest
    erased: list[str]
    pending_recipients: int


def request_erasure(
    ctx: GatewayContext,
    session: Session,
    *,
    dataset_ref: str,
    actor: Actor,
    subject_id: str | None = None,
    asset_id: str | None = None,
    task_remover: TaskRemover | None = None,
) -> ErasureOutcome:
    """Register the request and carry it out in the caller's transaction."""
    if (subject_id is None) == (asset_id is None):
        raise InvalidRequest("name exactly one of a subject id or an asset id")
    dataset = get_dataset(session, dataset_ref)
    now = ctx.clock()
    subject = None
    if subject_id is not None:
        if not subject_id.strip():
            raise InvalidRequest("the subject id is empty")
        subject = pseudonym(
            ctx, session, dataset_id=dataset.id, field=PseudonymField.SUBJECT_ID, value=subject_id
        )
    request = ErasureRequest(
        id=str(uuid.uuid4()),
        dataset_id=dataset.id,
        subject_pseudonym=subject,
        asset_id=asset_id,
        state=ErasureState.OPEN,
        received_at=now,
        due_at=one_month_later(now),
        requested_by=f"{actor.kind}:{actor.id}"[:100],
    )
    session.add(request)
    session.flush()
    _record(ctx, session, request, Action.ERASURE_REQUESTED, actor, {})
    if asset_id is not None:
        asset = session.get(Asset, asset_id)
        if asset is None or asset.dataset_id != dataset.id:
            raise NotFound(f"no asset {asset_id!r} in dataset {dataset.name}", asset=asset_id)
        targets = [asset]
    else:
        assert subject is not None  # noqa: S101 (narrowing for mypy)
        targets = find_subject_assets(ctx, session, dataset.id, subject)
    return _carry_out(ctx, session, request, targets, actor, task_remover or default_task_remover())


def find_subject_assets(
    ctx: GatewayContext, session: Session, dataset_id: str, subject: str
) -> list[Asset]:
    """Assets whose sealed subject id has this pseudonym (recomputed per asset)."""
    _, secret = dataset_secret(
        ctx.keys, session, dataset_id, SecretPurpose.PSEUDONYM, now=ctx.clock()
    )
    found = []
    candidates = session.exec(
        select(Asset)
        .where(Asset.dataset_id == dataset_id, col(Asset.private_meta).is_not(None))
        .order_by(col(Asset.created_at))
    ).all()
    for asset in candidates:
        try:
            private = private_metadata(ctx, session, asset)
        except (KeyUnavailable, IntegrityFailure):  # its key was shredded: nothing to read
            continue
        value = identifiers(private).get(PseudonymField.SUBJECT_ID)
        if (
            value
            and compute_pseudonym(secret, field=PseudonymField.SUBJECT_ID, value=value) == subject
        ):
            found.append(asset)
    return found


def _carry_out(
    ctx: GatewayContext,
    session: Session,
    request: ErasureRequest,
    targets: list[Asset],
    actor: Actor,
    remover: TaskRemover,
) -> ErasureOutcome:
    recipients: list[dict[str, Any]] = []
    erased: list[str] = []
    for asset in targets:
        if AssetState(asset.state) is AssetState.ERASED:
            continue
        recipients += erase_asset(
            ctx, session, asset, actor=actor, remover=remover, request_id=request.id
        )
        erased.append(asset.id)
    pending = sum(1 for r in recipients if r.get("state") != "removed")
    request.assets_erased = erased
    request.recipients = recipients
    if pending == 0:
        request.state, request.completed_at = ErasureState.COMPLETED, ctx.clock()
    session.add(request)
    _record(
        ctx,
        session,
        request,
        Action.ERASURE_CARRIED_OUT,
        actor,
        {
            "assets": len(erased),
            "recipients": len(recipients),
            "pending_recipients": pending,
            "state": request.state,
        },
    )
    return ErasureOutcome(request, erased, pending)


def erase_asset(
    ctx: GatewayContext,
    session: Session,
    asset: Asset,
    *,
    actor: Actor,
    remover: TaskRemover,
    request_id: str,
) -> list[dict[str, Any]]:
    """Delete everything held about one asset; returns the Label Studio recipients."""
    if AssetState(asset.state) is AssetState.PROCESSING:
        raise Conflict(
            "the asset is being processed; retry the erasure in a minute", asset_id=asset.id
        )
    aliases = _asset_pseudonyms(ctx, session, asset)
    deleted = [
        k
        for k, v in (("original", asset.original_blob), ("redacted", asset.redacted_blob))
        if v is not None
    ]
    delete_blob(ctx, session, asset.original_blob, owner=asset.id)
    delete_blob(ctx, session, asset.redacted_blob, owner=asset.id)
    if drop_candidate(ctx, session, asset.id):
        deleted.append("review-candidate")
    recipients = remover.remove_tasks(ctx, session, asset_id=asset.id, reason="erasure")
    delete_detections(session, asset.id)
    if aliases:
        session.exec(
            delete(VaultEntry).where(
                col(VaultEntry.dataset_id) == asset.dataset_id,
                col(VaultEntry.pseudonym).in_(aliases),
            )
        )
    note_original_gone(asset, now=ctx.clock())
    asset.original_blob = asset.redacted_blob = None
    asset.private_meta = None
    transition(
        session,
        asset,
        AssetState.ERASED,
        actor=actor,
        now=ctx.clock(),
        region=ctx.settings.region,
        parameters={
            "erasure_request": request_id,
            "deleted": [*deleted, "detections", "annotations", "private_metadata", "vault_entries"],
            "vault_entries": len(aliases),
            "labelstudio_tasks": len(recipients),
        },
    )
    return recipients


def _asset_pseudonyms(ctx: GatewayContext, session: Session, asset: Asset) -> list[str]:
    """The subject and file-name pseudonyms of an asset (their vault entries go too)."""
    if asset.private_meta is None:
        return []
    try:
        found = identifiers(private_metadata(ctx, session, asset))
    except (KeyUnavailable, IntegrityFailure):  # shredded: no pseudonym can be recomputed
        return []
    return [
        pseudonym(ctx, session, dataset_id=asset.dataset_id, field=f, value=v)
        for f, v in found.items()
        if f in (PseudonymField.SUBJECT_ID, PseudonymField.FILE_NAME, PseudonymField.DEVICE_SERIAL)
    ]


def _record(
    ctx: GatewayContext,
    session: Session,
    request: ErasureRequest,
    action: Action,
    actor: Actor,
    extra: dict[str, Any],
) -> None:
    recorder(ctx, session, actor).record(
        action,
        entity=request.id,
        dataset=request.dataset_id,
        parameters={
            "scope": "subject" if request.subject_pseudonym else "asset",
            "subject_pseudonym": request.subject_pseudonym or "",
            "asset_id": request.asset_id or "",
            "due": request.due_at.isoformat(),
            **extra,
        },
    )


def erasure_register(session: Session, *, dataset_id: str | None = None) -> list[ErasureRequest]:
    stmt = select(ErasureRequest).order_by(col(ErasureRequest.received_at))
    if dataset_id is not None:
        stmt = stmt.where(ErasureRequest.dataset_id == dataset_id)
    return list(session.exec(stmt).all())


def register_view(request: ErasureRequest, *, now: datetime) -> dict[str, Any]:
    due = as_utc(request.due_at)
    return {
        "id": request.id,
        "dataset_id": request.dataset_id,
        "scope": "subject" if request.subject_pseudonym else "asset",
        "subject_pseudonym": request.subject_pseudonym,
        "asset_id": request.asset_id,
        "state": request.state,
        "received_at": as_utc(request.received_at).isoformat(),
        "due_at": due.isoformat(),
        "overdue": request.state == ErasureState.OPEN and due < now,
        "completed_at": as_utc(request.completed_at).isoformat() if request.completed_at else None,
        "assets_erased": len(request.assets_erased or []),
        "recipients": request.recipients or [],
    }


def retry_open_erasures(
    ctx: GatewayContext, *, task_remover: TaskRemover | None = None
) -> list[ErasureRequest]:
    """Ask again the recipients still pending for each open request (one transaction each);
    a request whose recipients all confirmed is completed and recorded. Returns those done."""
    remover = task_remover or default_task_remover()
    completed = []
    with transaction(ctx.engine) as session:
        open_ids = [
            r.id
            for r in session.exec(
                select(ErasureRequest).where(ErasureRequest.state == ErasureState.OPEN)
            ).all()
        ]
    for request_id in open_ids:
        with transaction(ctx.engine) as session:
            request = session.get(ErasureRequest, request_id)
            if request is None or request.state != ErasureState.OPEN:
                continue
            recipients = [
                r
                for asset_id in request.assets_erased or []
                for r in remover.remove_tasks(ctx, session, asset_id=asset_id, reason="erasure")
            ]
            confirmed = [r for r in request.recipients or [] if r.get("state") == "removed"]
            request.recipients = confirmed + recipients
            pending = sum(1 for r in recipients if r.get("state") != "removed")
            if pending == 0:
                request.state, request.completed_at = ErasureState.COMPLETED, ctx.clock()
                completed.append(request)
            session.add(request)
            _record(
                ctx,
                session,
                request,
                Action.ERASURE_RETRIED,
                ERASURE_RETRY,
                {"pending_recipients": pending, "state": request.state},
            )
    return completed


ERASURE_RETRY = Actor("system", "erasure")
