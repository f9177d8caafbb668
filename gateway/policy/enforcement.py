"""Residency enforcement points: the one check every code path that moves data calls.

    enforce_residency(ctx, session, point=EnforcementPoint.SYNC, dataset_id=...,
                      target_region=destination.region, actor=..., entity_type="asset",
                      entity_id=asset.id, transfer_basis=destination_basis)

Allowed: returns a `Clearance` (gateway/core/clearance.py) naming the point, dataset, region and
policy; the sink that moves the data requires it (the caller's own lineage record carries the
region). Nothing but this module makes a Clearance. Denied: raises
ResidencyViolation naming the rule, the policy and the regions, and records the blocked
attempt in lineage in its OWN committed transaction, since the caller's rolls back. When the
caller's session already holds a transaction (it may hold SQLite's write lock or the lineage
head row lock), the record is written the moment that transaction ends, commit or rollback,
so it can neither deadlock against the caller nor be rolled back with it.

`record_once_per` (e.g. an image URL anyone holding it may fetch in a loop, unauthenticated)
writes the blocked record only if none for the same entity is in the ledger or its outbox
within that window: the refusal is evidence once, not once per request.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import event
from sqlmodel import Session, col, select

from gateway.core.clearance import Clearance, EnforcementPoint, policy_version_of
from gateway.core.context import GatewayContext
from gateway.core.db import transaction
from gateway.core.errors import ResidencyViolation
from gateway.core.models import LineageRecord
from gateway.lineage import Action, Actor, recorder
from gateway.lineage.tables import LineageOutbox
from gateway.policy.catalogue import load_catalogue
from gateway.policy.errors import PolicyMissing
from gateway.policy.governing import governing_policy
from gateway.policy.residency import TransferDecision, decide_transfer
from gateway.policy.schema import EnforcedMove

log = logging.getLogger(__name__)
__all__ = ["Clearance", "EnforcementPoint", "check_residency", "enforce_residency"]


MOVE_OF: dict[EnforcementPoint, EnforcedMove] = {
    EnforcementPoint.INGEST: EnforcedMove.PROCESSING,
    EnforcementPoint.STORAGE_WRITE: EnforcedMove.STORAGE,
    EnforcementPoint.SYNC: EnforcedMove.ANNOTATION,
    EnforcementPoint.ML_BACKEND: EnforcedMove.PROCESSING,
    EnforcementPoint.EXPORT: EnforcedMove.EXPORT,
}


def storage_region(ctx: GatewayContext) -> str:
    """Where the blob store keeps data (its own setting, else this gateway's region)."""
    return ctx.settings.storage_region or ctx.settings.region


def check_residency(
    session: Session,
    *,
    point: EnforcementPoint,
    dataset_id: str,
    target_region: str,
    transfer_basis: str | None,
    ctx: GatewayContext,
) -> tuple[TransferDecision, dict[str, Any]]:
    """The decision and the policy reference, without recording anything (dry runs, UIs)."""
    try:
        governing = governing_policy(session, dataset_id)
    except PolicyMissing as exc:
        facts = {"target_region": target_region, "transfer_basis": transfer_basis}
        return TransferDecision(False, "policy.missing", exc.message, facts), {}
    decision = decide_transfer(
        governing.document.residency,
        load_catalogue(),
        move=MOVE_OF[point],
        target_region=target_region,
        transfer_basis=transfer_basis,
        on=ctx.clock().date(),
    )
    return decision, governing.reference()


def enforce_residency(
    ctx: GatewayContext,
    session: Session,
    *,
    point: EnforcementPoint,
    dataset_id: str,
    target_region: str,
    actor: Actor,
    entity_type: str,
    entity_id: str,
    transfer_basis: str | None = None,
    record_once_per: timedelta | None = None,
) -> Clearance:
    decision, policy_ref = check_residency(
        session,
        point=point,
        dataset_id=dataset_id,
        target_region=target_region,
        transfer_basis=transfer_basis,
        ctx=ctx,
    )
    if decision.allowed:
        return Clearance(dataset_id, point, target_region, policy_version_of(policy_ref))
    details = {
        "rule": decision.rule,
        "point": point.value,
        "dataset_id": dataset_id,
        "entity": {"type": entity_type, "id": entity_id},
        **policy_ref,
        **decision.details,
    }
    record = {
        "entity_type": entity_type,
        "entity": entity_id,
        "dataset": dataset_id,
        "parameters": _lineage_safe(details),
    }
    _record_blocked(ctx, session, actor, record, once_per=record_once_per)
    raise ResidencyViolation(
        f"{point.value} to region {target_region} blocked by rule {decision.rule}: "
        f"{decision.message}",
        **details,
    )


def reseal_clearance(dataset_id: str, region: str) -> Clearance:
    """For re-sealing a blob in place (key rotation): it stays in the region it is in, under
    the same key name, so no policy decides anything; the store still requires a clearance."""
    return Clearance(dataset_id, EnforcementPoint.STORAGE_WRITE, region, "in-place-reseal")


def _lineage_safe(details: dict[str, Any]) -> dict[str, Any]:
    """Lineage holds integers and strings only, and no None-valued noise."""
    return {k: v for k, v in details.items() if v is not None and k != "entity"}


def _record_blocked(
    ctx: GatewayContext,
    session: Session,
    actor: Actor,
    record: dict[str, Any],
    *,
    once_per: timedelta | None,
) -> None:
    if not session.in_transaction():
        _write_blocked(ctx, actor, record, once_per=once_per)
        return
    outer = session.get_transaction()
    pending = [record]

    def after_end(_session: Session, ended: Any) -> None:
        # a savepoint ending leaves the caller's transaction (and its locks) open
        if ended is not outer or not pending:
            return
        try:
            _write_blocked(ctx, actor, pending.pop(), once_per=once_per)
        except Exception:  # the transfer stays blocked; only its record is lost, loudly
            log.exception("could not record a blocked transfer in lineage")

    event.listen(session, "after_transaction_end", after_end)


def _write_blocked(
    ctx: GatewayContext, actor: Actor, record: dict[str, Any], *, once_per: timedelta | None
) -> None:
    now = ctx.clock()
    with transaction(ctx.engine) as own:
        if once_per is not None and blocked_since(own, record["entity"], since=now - once_per):
            return
        recorder(ctx, own, actor, now=now).record(Action.RESIDENCY_BLOCKED, **record)


def blocked_since(session: Session, entity_id: str, *, since: datetime) -> bool:
    """A blocked transfer of this entity is in the ledger, or waiting in its outbox, since."""
    chained = session.exec(
        select(LineageRecord.seq).where(
            LineageRecord.action == Action.RESIDENCY_BLOCKED,
            LineageRecord.entity_id == entity_id,
            col(LineageRecord.created_at) >= since,
        )
    ).first()
    if chained is not None:
        return True
    waiting = session.exec(
        select(LineageOutbox.body).where(col(LineageOutbox.created_at) >= since)
    ).all()
    return any(
        Action.RESIDENCY_BLOCKED in body and f'"id":"{entity_id}"' in body for body in waiting
    )
