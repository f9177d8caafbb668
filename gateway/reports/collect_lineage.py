"""Lineage-derived sections: record keeping, regions, deletions, erasures, blocked transfers,
chain verification, signing keys and checkpoints."""

from __future__ import annotations

import base64
import importlib.util
from collections.abc import Sequence
from typing import TYPE_CHECKING

from sqlalchemy import func, select
from sqlmodel import Session, col

from gateway.core.errors import IntegrityFailure
from gateway.core.models import LineageHead, LineageRecord
from gateway.lineage import verify_chain
from gateway.lineage.actions import RESIDENCY_REFUSALS, Action
from gateway.lineage.live import verify_for_report
from gateway.lineage.tables import LineageCheckpoint, LineageSigningKey
from gateway.reports.model import (
    CheckpointInfo,
    Count,
    LineageSection,
    RetentionEvent,
    SigningKeyInfo,
    Transfer,
)
from gateway.reports.query import Scope, as_utc, counts, grouped, iso, json_text, run

if TYPE_CHECKING:
    from gateway.core.context import GatewayContext


def actions(session: Session, scope: Scope) -> list[Count]:
    return counts(session, scope.lineage(grouped(col(LineageRecord.action))))


def record_span(session: Session, scope: Scope) -> tuple[int, str | None, str | None]:
    stmt = scope.lineage(
        select(func.count(), func.min(LineageRecord.created_at), func.max(LineageRecord.created_at))
    )
    n, first, last = run(session, stmt).one()
    return int(n), iso(first), iso(last)


def regions(session: Session, scope: Scope, *, action_prefix: str | None = None) -> list[Count]:
    """Lineage records per region they were recorded in (where the step ran)."""
    region = json_text(session, col(LineageRecord.payload), "region")
    where = [] if action_prefix is None else [col(LineageRecord.action).startswith(action_prefix)]
    return counts(session, scope.lineage(grouped(region, *where)))


def storage_regions(session: Session, scope: Scope) -> list[Count]:
    """Where originals were written: the intake record's `storage_region` parameter when it
    names one (a blob store in another region than the gateway), else the record's region."""
    payload = col(LineageRecord.payload)
    region = func.coalesce(
        json_text(session, payload, "parameters", "storage_region"),
        json_text(session, payload, "region"),
    )
    received = col(LineageRecord.action) == Action.ASSET_RECEIVED
    return counts(session, scope.lineage(grouped(region, received)))


def events(session: Session, scope: Scope, *, actions: Sequence[Action]) -> list[RetentionEvent]:
    """Count, first and last time of each of these actions."""
    matches = col(LineageRecord.action).in_(actions)
    stmt = scope.lineage(
        select(
            col(LineageRecord.action),
            func.count(),
            func.min(LineageRecord.created_at),
            func.max(LineageRecord.created_at),
        )
        .where(matches)
        .group_by(col(LineageRecord.action))
    )
    return [
        RetentionEvent(action=a, count=int(n), first_at=iso(f) or "", last_at=iso(la) or "")
        for a, n, f, la in sorted(run(session, stmt).all())
    ]


def blocked_transfers(session: Session, scope: Scope) -> list[Transfer]:
    """Residency refusals, recorded by the enforcement point in their own transaction."""
    payload = col(LineageRecord.payload)
    keys = (
        json_text(session, payload, "region"),
        json_text(session, payload, "parameters", "target_region"),
        json_text(session, payload, "parameters", "point"),
        json_text(session, payload, "parameters", "transfer_basis"),
    )
    blocked = col(LineageRecord.action).in_(RESIDENCY_REFUSALS)
    stmt = scope.lineage(select(*keys, func.count()).where(blocked).group_by(*keys))
    return [
        Transfer(
            from_region=src or "unknown",
            to_region=dst or "unknown",
            point=point or "unknown",
            basis=basis,
            count=int(n),
            blocked=True,
        )
        for src, dst, point, basis, n in run(session, stmt).all()
    ]


def lineage_section(
    session: Session, scope: Scope, *, ctx: GatewayContext | None = None
) -> LineageSection:
    """With `ctx`, the ledger is verified from the newest trusted checkpoint on, anchored to
    the gateway's key (or the settings' pinned key and checkpoint log), and asset states and
    detections are checked against it; without, the whole chain's own consistency."""
    head = run(session, select(LineageHead).where(col(LineageHead.id) == 1)).scalar_one()
    failure: str | None = None
    verified = 0
    try:
        if ctx is None:
            verified = verify_chain(session)
        else:
            verified = verify_for_report(ctx, session).head_seq
    except IntegrityFailure as exc:
        failure = f"{exc.message} ({', '.join(f'{k}={v}' for k, v in exc.details.items())})"
    dataset_records, _, _ = record_span(session, scope)
    return LineageSection(
        verified=failure is None,
        records_verified=verified,
        failure=failure,
        head_seq=head.seq,
        head_hash=head.head_hash,
        dataset_records=dataset_records,
        signing_keys=signing_keys(session),
        checkpoints=checkpoints(session),
    )


def _has(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def signing_keys(session: Session) -> list[SigningKeyInfo]:
    if not _has("gateway.lineage.tables"):
        return []
    rows = run(
        session, select(LineageSigningKey).order_by(col(LineageSigningKey.created_at))
    ).scalars()
    return [
        SigningKeyInfo(
            key_id=k.key_id,
            fingerprint=k.fingerprint,
            public_key=base64.b64encode(k.public_key).decode(),
            created_at=iso(k.created_at) or "",
            retired_at=iso(k.retired_at),
        )
        for k in rows
    ]


def checkpoints(session: Session, *, latest: int = 5) -> list[CheckpointInfo]:
    if not _has("gateway.lineage.tables"):
        return []
    rows = run(
        session,
        select(LineageCheckpoint).order_by(col(LineageCheckpoint.tree_size).desc()).limit(latest),
    ).scalars()
    return [
        CheckpointInfo(
            tree_size=c.tree_size,
            root_hash=c.root_hash,
            chain_head=c.chain_head,
            key_id=c.key_id,
            created_at=as_utc(c.created_at).isoformat(),
        )
        for c in rows
    ]
