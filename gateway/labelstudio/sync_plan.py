"""What a sync sends, and why it leaves every other asset of the dataset out.

Released means syncable while the redacted copy lives: whether the original is still stored
(`Asset.original_deleted_at`) plays no part. Every asset not sent is named with its reason,
so "0 tasks created" always comes with the why.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlmodel import Session, col, select

from gateway.core.models import Asset, AssetState, AssetSync, SyncState

DONE_STATES = (SyncState.SYNCED, SyncState.REMOVED)
NOT_YET = frozenset({AssetState.RECEIVED, AssetState.PROCESSING})


@dataclass
class SyncPlan:
    todo: list[str] = field(default_factory=list)  # released, no task yet (failed: again)
    already: int = 0
    skipped: dict[str, str] = field(default_factory=dict)  # asset id -> why it is not sent


def skip_reason(
    state: AssetState,
    *,
    has_redacted_copy: bool,
    reasons: Sequence[Any] | None,
    sync_state: SyncState | None,
) -> str | None:
    """Why an asset is not sent (None: it is sent, or already is)."""
    if state is AssetState.RELEASED:
        if not has_redacted_copy:
            return "released, but its redacted copy is missing"
        if sync_state is SyncState.REMOVED:
            return "its task was withdrawn from this destination"
        return None
    if state in NOT_YET:
        return f"{state.value}: not redacted yet"
    codes = sorted({str(r.get("code")) for r in reasons or [] if isinstance(r, dict)})
    return f"{state.value}: {', '.join(codes)}" if codes else state.value


def plan_sync(session: Session, dataset_id: str, destination_id: str) -> SyncPlan:
    rows = session.exec(
        select(Asset.id, Asset.state, Asset.redacted_blob, Asset.reasons)
        .where(Asset.dataset_id == dataset_id)
        .order_by(col(Asset.created_at), col(Asset.id))
    ).all()
    synced: dict[str, SyncState] = {
        asset_id: SyncState(state)
        for asset_id, state in session.exec(
            select(AssetSync.asset_id, AssetSync.state)
            .join(Asset, col(Asset.id) == col(AssetSync.asset_id))
            .where(Asset.dataset_id == dataset_id, AssetSync.destination_id == destination_id)
        ).all()
    }
    plan = SyncPlan()
    for asset_id, state, redacted_blob, reasons in rows:
        sync_state = synced.get(asset_id)
        why = skip_reason(
            AssetState(state),
            has_redacted_copy=redacted_blob is not None,
            reasons=reasons,
            sync_state=sync_state,
        )
        if why is not None:
            plan.skipped[asset_id] = why
        elif sync_state in DONE_STATES:
            plan.already += 1
        else:
            plan.todo.append(asset_id)
    return plan


def skipped_by_reason(skipped: dict[str, str]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for why in skipped.values():
        counts[why] = counts.get(why, 0) + 1
    return dict(sorted(counts.items()))
