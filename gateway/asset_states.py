"""The asset state machine. Every transition writes its lineage record in the same transaction.

The lifecycle is received -> processing -> released | quarantined, plus rejected, expired and
erased. Deleting the original (retention's `originals_days`) is not a state: it sets
`Asset.original_deleted_at` and writes its own `asset.original_deleted` record, and the asset
stays released (still shown, synced and exported while its redacted copy lives) or quarantined
(still withheld, with its reasons). Only re-processing needs the original, so an asset whose
original is gone can no longer enter `processing`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlmodel import Session

from gateway.core.errors import InvalidStateTransition
from gateway.core.models import Asset, AssetState
from gateway.lineage import Action, Actor, recorder_at

S = AssetState
ALLOWED: dict[AssetState, frozenset[AssetState]] = {
    S.RECEIVED: frozenset({S.PROCESSING, S.QUARANTINED, S.ERASED, S.EXPIRED}),
    S.PROCESSING: frozenset({S.RELEASED, S.QUARANTINED, S.RECEIVED}),
    S.RELEASED: frozenset({S.PROCESSING, S.QUARANTINED, S.EXPIRED, S.ERASED}),
    S.QUARANTINED: frozenset({S.PROCESSING, S.REJECTED, S.EXPIRED, S.ERASED}),  # rejected: review
    S.REJECTED: frozenset({S.EXPIRED, S.ERASED}),
    S.EXPIRED: frozenset({S.ERASED}),
    S.ERASED: frozenset(),
}
RELEASABLE_FROM = frozenset({S.PROCESSING})
NEEDS_ORIGINAL = frozenset({S.PROCESSING})  # the pipeline redacts from the original


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
    if to not in ALLOWED[current] or (to in NEEDS_ORIGINAL and original_deleted(asset)):
        raise InvalidStateTransition(
            f"an asset cannot go from {current.value} to {to.value}"
            + (" (its original was deleted)" if original_deleted(asset) else ""),
            asset_id=asset.id,
            current=current.value,
            requested=to.value,
        )
    asset.state = to
    asset.updated_at = now
    if reasons is not None:
        asset.reasons = [*asset.reasons, *reasons]
    session.add(asset)
    recorder_at(session, actor=actor, region=region, now=now).record(
        Action.entered(to),
        entity=asset.id,
        dataset=asset.dataset_id,
        inputs=inputs,
        outputs=outputs,
        parameters={"from": current.value, **(parameters or {}), **_codes(reasons)},
    )


def original_deleted(asset: Asset) -> bool:
    return asset.original_deleted_at is not None


def record_original_deleted(
    session: Session,
    asset: Asset,
    *,
    actor: Actor,
    now: datetime,
    region: str,
    parameters: dict[str, Any] | None = None,
) -> None:
    """The original is gone (the caller deleted the blob): note when, keep the state, and
    write the `asset.original_deleted` record naming the state the asset stays in."""
    if original_deleted(asset):
        raise InvalidStateTransition(
            "the asset's original was already deleted",
            asset_id=asset.id,
            current=AssetState(asset.state).value,
            requested="original_deleted",
        )
    asset.original_blob = None
    asset.original_deleted_at = now
    asset.updated_at = now
    session.add(asset)
    recorder_at(session, actor=actor, region=region, now=now).record(
        Action.ASSET_ORIGINAL_DELETED,
        entity=asset.id,
        dataset=asset.dataset_id,
        parameters={"state": AssetState(asset.state).value, **(parameters or {})},
    )


def note_original_gone(asset: Asset, *, now: datetime) -> None:
    """Expiry and erasure delete a stored original with everything else (their own records
    say so); call before clearing `original_blob`. A rejected asset never stored one."""
    if asset.original_blob is not None and asset.original_deleted_at is None:
        asset.original_deleted_at = now


def shows_redacted(asset: Asset) -> bool:
    """May the redacted copy be shown (Label Studio, ML backend, exports)? Released, and the
    copy exists. Whether the original is still stored does not matter."""
    return AssetState(asset.state) is S.RELEASED and asset.redacted_blob is not None


def _codes(reasons: list[dict[str, Any]] | None) -> dict[str, Any]:
    # lineage keeps reason codes only: messages may quote things we must not record
    return {"reasons": [r["code"] for r in reasons]} if reasons else {}
