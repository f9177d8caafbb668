"""Policies, retention deadlines, legal holds and the erasure register.

The policy engine's tables (legal_hold, erasure_request) are read by name with reflection, so
a report works on a gateway built without them ("nothing recorded yet").
"""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlmodel import Session, col

from gateway.core.models import Asset, Dataset, PolicyVersion
from gateway.policy.catalogue import UnknownName, load_catalogue
from gateway.policy.errors import PolicyMissing
from gateway.policy.governing import governing_policy
from gateway.policy.weakening import weakened_in_document
from gateway.reports.collect_annotations import table
from gateway.reports.collect_assets import asset_filter
from gateway.reports.model import (
    Count,
    DueItem,
    ErasureEntry,
    LegalHoldEntry,
    PolicyVersionEntry,
    Recipient,
    Transfer,
)
from gateway.reports.query import Scope, counts, iso, run

DUE_WINDOW_DAYS = 30


def policy_entry(
    *,
    policy_id: str,
    name: str,
    version: int,
    digest: str,
    activated_at: datetime | None,
    assets_governed: int,
    document: dict[str, Any],
) -> PolicyVersionEntry:
    residency = document.get("residency", {}) or {}
    return PolicyVersionEntry(
        id=policy_id,
        name=name,
        version=version,
        digest=digest,
        activated_at=iso(activated_at),
        assets_governed=assets_governed,
        retention_days={
            k: int(v)
            for k, v in (document.get("retention", {}) or {}).items()
            if isinstance(v, int)
        },
        allowed_regions={
            k: [str(r) for r in v]
            for k, v in residency.items()
            if k.endswith("_regions") and isinstance(v, list)
        },
        transfer_bases=[str(b) for b in residency.get("transfer_bases", [])],
        origin=str(residency["origin"]) if residency.get("origin") else None,
        redaction=_redaction_summary(document.get("redaction") or {}),
        pseudonymisation={
            str(k): _text(v) for k, v in (document.get("pseudonymisation") or {}).items()
        },
        weakened=weakened_in_document(document),
        review={str(k): _text(v) for k, v in (document.get("review") or {}).items()},
    )


def _redaction_summary(section: dict[str, Any]) -> dict[str, str]:
    """Which detectors the policy switches on, and the operator (thresholds stay in the
    policy document its digest names)."""
    found = {
        str(k): "on" if v.get("enabled") else "off"
        for k, v in section.items()
        if isinstance(v, dict) and "enabled" in v
    }
    if "operator" in section:
        found["operator"] = _text(section["operator"])
    return found


def _text(value: Any) -> str:
    """A policy value as text (signed data holds no floats)."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        return ", ".join(map(str, value)) or "none"
    return str(value)


def policy_versions(session: Session, dataset: Dataset, scope: Scope) -> list[PolicyVersionEntry]:
    """Policy versions named by this dataset's assets (each record names its policy)."""
    key = col(Asset.policy_version_id)
    stmt = select(key, func.count()).where(*asset_filter(scope)).group_by(key)
    governed = {str(k): int(n) for k, n in run(session, stmt).all() if k}
    if dataset.policy_version_id:
        governed.setdefault(dataset.policy_version_id, 0)
    rows = run(session, select(PolicyVersion).where(col(PolicyVersion.id).in_(governed))).scalars()
    entries = [
        policy_entry(
            policy_id=p.id,
            name=p.name,
            version=p.version,
            digest=p.digest,
            activated_at=p.activated_at,
            assets_governed=governed.get(p.id, 0),
            document=p.document,
        )
        for p in rows
    ]
    return sorted(entries, key=lambda e: (e.activated_at or "", e.name, e.version))


def current_policy(
    session: Session, dataset: Dataset
) -> tuple[PolicyVersionEntry | None, str | None]:
    """The policy governing the dataset now, as the policy engine resolves it."""
    try:
        governing = governing_policy(session, dataset.id)
    except PolicyMissing:
        return None, None
    row = session.get(PolicyVersion, governing.version_id) if governing.version_id else None
    entry = policy_entry(
        policy_id=governing.version_id or f"{governing.source}:{governing.name}",
        name=governing.name,
        version=governing.version or 0,
        digest=governing.digest,
        activated_at=row.activated_at if row else None,
        assets_governed=0,
        document=governing.document.model_dump(mode="json"),
    )
    return entry, governing.source


def due_next(
    session: Session, dataset: Dataset, current: PolicyVersionEntry | None, *, now: datetime
) -> list[DueItem]:
    """The next retention deadline per kind of data, under the policy in force now."""
    if current is None:
        return []
    items: list[DueItem] = []
    for what, days, blob in (
        ("encrypted originals", current.retention_days.get("originals_days"), Asset.original_blob),
        ("redacted copies", current.retention_days.get("redacted_days"), Asset.redacted_blob),
    ):
        if days is None:
            continue
        kept = (col(Asset.dataset_id) == dataset.id, col(blob).is_not(None))
        oldest = run(session, select(func.min(Asset.created_at)).where(*kept)).scalar_one()
        if oldest is None:
            continue
        horizon = now + timedelta(days=DUE_WINDOW_DAYS) - timedelta(days=days)
        due = run(
            session, select(func.count()).where(*kept, col(Asset.created_at) < horizon)
        ).scalar_one()
        items.append(
            DueItem(what=what, due_at=iso(oldest + timedelta(days=days)) or "", assets=int(due))
        )
    return items


def vault_entries(session: Session, dataset_id: str) -> list[Count]:
    """Re-identification vault entries held for the dataset, per pseudonymised field."""
    vault = table(session, "vault_entry")
    if vault is None:
        return []
    stmt = (
        select(vault.c.field, func.count())
        .where(vault.c.dataset_id == dataset_id)
        .group_by(vault.c.field)
    )
    return counts(session, stmt)


def legal_holds(session: Session, dataset_id: str) -> list[LegalHoldEntry]:
    holds = table(session, "legal_hold")
    if holds is None:
        return []
    stmt = (
        select(holds.c.asset_id, holds.c.reason, holds.c.placed_at, holds.c.released_at)
        .where(holds.c.dataset_id == dataset_id)
        .order_by(holds.c.placed_at)
    )
    return [
        LegalHoldEntry(
            scope=f"asset {asset_id}" if asset_id else "whole dataset",
            reason=str(reason),
            placed_at=iso(placed) or "",
            released_at=iso(released),
        )
        for asset_id, reason, placed, released in run(session, stmt).all()
    ]


def erasure_register(session: Session, scope: Scope) -> list[ErasureEntry]:
    requests = table(session, "erasure_request")
    if requests is None or scope.dataset_id is None:
        return []
    stmt = select(
        requests.c.id,
        requests.c.state,
        requests.c.received_at,
        requests.c.due_at,
        requests.c.completed_at,
        requests.c.assets_erased,
        requests.c.recipients,
    ).where(requests.c.dataset_id == scope.dataset_id)
    stmt = scope.within(stmt, requests.c.received_at).order_by(requests.c.received_at)
    return [
        ErasureEntry(
            request_id=str(rid),
            state=str(state),
            received_at=iso(received) or "",
            due_at=iso(due) or "",
            completed_at=iso(completed),
            assets_erased=len(_json_list(erased)),
            recipients_notified=len(_json_list(recipients)),
        )
        for rid, state, received, due, completed, erased, recipients in run(session, stmt).all()
    ]


def _json_list(value: Any) -> list[Any]:
    if isinstance(value, str | bytes):
        value = json.loads(value)
    return list(value) if isinstance(value, list) else []


def classify_transfers(
    recipients: list[Recipient],
    current: PolicyVersionEntry | None,
    *,
    home_regions: set[str],
    on: date,
) -> list[Transfer]:
    """Recipients outside the origin jurisdiction's free-flow area are Chapter V transfers;
    each names its basis: the destination's declared tool, or the adequacy decision."""
    origin = current.origin if current is not None else None
    if origin is None:
        return _fallback_transfers(recipients, home_regions)
    catalogue = load_catalogue()
    found = []
    for r in recipients:
        try:
            country = catalogue.region(r.region).country
            free = catalogue.free_flow_countries(origin)
        except UnknownName:
            found.append(_transfer(r, home_regions, "region not in the catalogue"))
            continue
        if country in free:
            continue
        decision = catalogue.adequacy_for(origin, country, on=on)
        basis = r.transfer_basis or (
            f"adequacy decision {decision.decision}" if decision is not None else None
        )
        found.append(_transfer(r, home_regions, basis))
    return found


def chapter_v_only(blocked: list[Transfer], current: PolicyVersionEntry | None) -> list[Transfer]:
    """The blocked attempts that were transfers at all: to a region outside the origin's
    free-flow area (or one the catalogue does not know). A refused move inside it, such as a
    same-region image fetch after a stricter policy, is a residency refusal (listed under
    residency), not a GDPR Chapter V transfer."""
    origin = current.origin if current is not None else None
    if origin is None:
        return [t for t in blocked if t.to_region not in t.from_region.split(", ")]
    catalogue = load_catalogue()
    try:
        free = catalogue.free_flow_countries(origin)
    except UnknownName:
        return list(blocked)  # an unknown jurisdiction: list every attempt (the safe side)
    found = []
    for t in blocked:
        try:
            outside = catalogue.region(t.to_region).country not in free
        except UnknownName:
            outside = True
        if outside:
            found.append(t)
    return found


def _transfer(r: Recipient, home: set[str], basis: str | None) -> Transfer:
    return Transfer(
        from_region=", ".join(sorted(home)) or "unknown",
        to_region=r.region,
        point="annotation",
        basis=basis,
        count=r.assets_sent,
        blocked=False,
    )


def _fallback_transfers(recipients: list[Recipient], home: set[str]) -> list[Transfer]:
    return [_transfer(r, home, r.transfer_basis) for r in recipients if r.region not in home]
