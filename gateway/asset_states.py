"""The asset state machine. Every transition writes its lineage record in the same transaction."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlmodel import Session, col, select

from gateway.errors import InvalidStateTransition
from gateway.lineage import Actor, append
from gateway.models import Asset, AssetState, LineageRecord

S = AssetState
ALLOWED: dict[AssetState, frozenset[AssetState]] = {
    S.RECEIVED: frozenset({S.PROCESSING, S.QUARANTINED, S.ERASED, S.EXPIRED}),
    S.PROCESSING: frozenset({S.RELEASED, S.QUARANTINED, S.RECEIVED}),
    S.RELEASED: frozenset({S.PROCESSING, S.QUARANTINED, S.ORIGINAL_DELETED, S.EXPIRED, S.ERASED}),
    S.QUARANTINED: frozenset({S.PROCESSING, S.ORIGINAL_DELETED, S.EXPIRED, S.ERASED}),
    S.REJECTED: frozenset({S.EXPIRED, S.ERASED}),
    S.ORIGINAL_DELETED: frozenset({S.QUARANTINED, S.EXPIRED, S.ERASED}),
    S.EXPIRED: frozenset({S.ERASED}),
    S.ERASED: frozenset(),
}
RELEASABLE_FROM = frozenset({S.PROCESSING})


def transition(
    session: Session,
    asset: Asset,
    to: AssetState,
    *,
    actor: Actor,
    now: datetime,
    region: str,
    reasons: list[dict[str, Any]] | None = None,
    inputs: dict[str, Any] | None = None,
    outputs: dict[str, Any] | None = None,
    parameters: dict[str, Any] | None = None,
) -> None:
    current = AssetState(asset.state)
    if to not in ALLOWED[current]:
        raise InvalidStateTransition(
            f"an asset cannot go from {current.value} to {to.value}",
            asset_id=asset.id,
            current=current.value,
            requested=to.value,
        )
    asset.state = to
    asset.updated_at = now
    if reasons is not None:
        asset.reasons = [*asset.reasons, *reasons]
    session.add(asset)
    append(
        session,
        action=f"asset.{to.value}",
        entity_type="asset",
        entity_id=asset.id,
        dataset_id=asset.dataset_id,
        actor=actor,
        now=now,
        region=region,
        inputs=inputs,
        outputs=outputs,
        parameters={"from": current.value, **(parameters or {}), **_codes(reasons)},
    )


def _codes(reasons: list[dict[str, Any]] | None) -> dict[str, Any]:
    # lineage keeps reason codes only: messages may quote things we must not record
    return {"reasons": [r["code"] for r in reasons]} if reasons else {}


def released_before_original_deleted(session: Session, asset_id: str) -> bool:
    """`original_deleted` follows a release or a quarantine: true only when the asset was
    released then (so its redacted copy and annotations may still be shown or exported)."""
    row = session.exec(
        select(LineageRecord)
        .where(
            LineageRecord.entity_id == asset_id,
            LineageRecord.action == f"asset.{AssetState.ORIGINAL_DELETED.value}",
        )
        .order_by(col(LineageRecord.seq).desc())
    ).first()
    if row is None:
        return False
    return bool(json.loads(row.payload).get("parameters", {}).get("from") == "released")
