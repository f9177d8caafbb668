"""Legal holds: while one is in place, retention deletes nothing it covers."""

from __future__ import annotations

import uuid

from sqlmodel import Session

from gateway.core.context import GatewayContext
from gateway.core.errors import Conflict, InvalidRequest, NotFound
from gateway.core.models import Asset
from gateway.datasets import get_dataset
from gateway.lineage import Action, Actor, recorder
from gateway.policy.tables import LegalHold


def place_hold(
    ctx: GatewayContext,
    session: Session,
    *,
    dataset_ref: str,
    reason: str,
    actor: Actor,
    asset_id: str | None = None,
) -> LegalHold:
    if len(reason.strip()) < 3:
        raise InvalidRequest("a legal hold needs a reason (e.g. a case reference)")
    dataset = get_dataset(session, dataset_ref)
    if asset_id is not None:
        asset = session.get(Asset, asset_id)
        if asset is None or asset.dataset_id != dataset.id:
            raise NotFound(f"no asset {asset_id!r} in dataset {dataset.name}", asset=asset_id)
    now = ctx.clock()
    hold = LegalHold(
        id=str(uuid.uuid4()),
        dataset_id=dataset.id,
        asset_id=asset_id,
        reason=reason,
        placed_by=f"{actor.kind}:{actor.id}"[:100],
        placed_at=now,
    )
    session.add(hold)
    session.flush()
    _record(ctx, session, hold, Action.LEGAL_HOLD_PLACED, actor)
    return hold


def release_hold(ctx: GatewayContext, session: Session, hold_id: str, *, actor: Actor) -> None:
    hold = session.get(LegalHold, hold_id)
    if hold is None:
        raise NotFound(f"no legal hold {hold_id!r}", hold=hold_id)
    if hold.released_at is not None:
        raise Conflict("this legal hold was already released", hold=hold_id)
    hold.released_at = ctx.clock()
    session.add(hold)
    _record(ctx, session, hold, Action.LEGAL_HOLD_RELEASED, actor)


def _record(
    ctx: GatewayContext, session: Session, hold: LegalHold, action: Action, actor: Actor
) -> None:
    recorder(ctx, session, actor).record(
        action,
        entity=hold.id,
        dataset=hold.dataset_id,
        parameters={
            "scope": "asset" if hold.asset_id else "dataset",
            "asset_id": hold.asset_id or "",
        },
    )
