"""Everything a report states, collected once (in the database) and passed to the writers."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import func, select
from sqlmodel import Session, col

from gateway.core.models import ApiKey, Asset, Dataset, DatasetKey
from gateway.lineage.actions import DELETIONS, ERASURE, POLICY_CHANGES, RETENTION, Action
from gateway.reports import collect_annotations as ls
from gateway.reports import collect_assets as assets
from gateway.reports import collect_lineage as lineage
from gateway.reports import collect_policy as policy
from gateway.reports import collect_review as review
from gateway.reports.leak_estimate import RecallCount, Reviewed
from gateway.reports.model import (
    AnnotationQuality,
    Count,
    DetectorUse,
    DueItem,
    ErasureEntry,
    Incident,
    LegalHoldEntry,
    LineageSection,
    PolicyVersionEntry,
    RecallFigure,
    Recipient,
    RetentionEvent,
    Transfer,
)
from gateway.reports.query import Scope, counts, grouped, iso, run


@dataclass(frozen=True)
class Facts:
    dataset: Dataset
    scope: Scope
    now: datetime
    states: list[Count]
    originals_deleted: dict[str, int]  # by lifecycle state
    originals_stored: int
    formats: list[Count]
    dimensions: dict[str, int | None]
    regions_by_label: list[Count]
    leak_check_by_label: list[Count]
    regions_recorded: list[Count]
    assets_with_regions: int
    detectors: list[DetectorUse]
    tools: list[str]
    policy_digests: list[str]
    quarantine_reasons: list[Count]
    rejection_reasons: list[Count]
    recall: list[RecallFigure]
    recall_source: str | None
    policies: list[PolicyVersionEntry]
    current_policy: PolicyVersionEntry | None
    current_policy_source: str | None
    policy_actions: list[Count]
    actions: list[Count]
    span: tuple[int, str | None, str | None]
    processing_regions: list[Count]
    storage_regions: list[Count]
    recipients: list[Recipient]
    blocked: list[Transfer]
    deletions: list[RetentionEvent]
    erasures: list[RetentionEvent]
    due: list[DueItem]
    holds: list[LegalHoldEntry]
    erasure_register: list[ErasureEntry]
    quality: AnnotationQuality | None
    incidents: list[Incident]
    key_rows: dict[str, int]
    vault_entries: list[Count]
    api_keys: list[Count]
    lineage: LineageSection
    reviews: list[Reviewed] = field(default_factory=list)
    calibration: list[RecallCount] = field(default_factory=list)
    review_versions: dict[str, str] = field(default_factory=dict)

    @property
    def assets_total(self) -> int:
        return sum(c.count for c in self.states)

    def state(self, name: str) -> int:
        return next((c.count for c in self.states if c.key == name), 0)

    def held(self, name: str) -> int:
        """Assets in `name` (released or quarantined) now, whether or not their original is
        still stored (deleting it does not change the state)."""
        return self.state(name)


def collect(
    session: Session,
    dataset: Dataset,
    scope: Scope,
    *,
    now: datetime,
    lineage_state: LineageSection | None = None,
) -> Facts:
    """Everything about one dataset; `lineage_state` reuses one chain verification."""
    tools, digests = assets.tools_and_policies(session, scope)
    recall, recall_source = assets.measured_recall()
    current, source = policy.current_policy(session, dataset)
    reviews = review.review_items(session, scope)
    return Facts(
        dataset=dataset,
        scope=scope,
        now=now,
        states=assets.assets_by_state(session, scope),
        originals_deleted=assets.originals_deleted(session, scope),
        originals_stored=assets.originals_stored(session, scope),
        formats=counts(session, grouped(col(Asset.source_format), *assets.asset_filter(scope))),
        dimensions=dimensions(session, scope),
        regions_by_label=assets.regions_by_label(session, scope, stage="detect"),
        leak_check_by_label=assets.regions_by_label(session, scope, stage="leak_check"),
        regions_recorded=assets.regions_recorded(session, scope),
        assets_with_regions=assets.assets_with_regions(session, scope),
        detectors=assets.detector_use(session, scope),
        tools=tools,
        policy_digests=digests,
        quarantine_reasons=assets.reason_codes(session, scope, action=Action.ASSET_QUARANTINED),
        rejection_reasons=assets.reason_codes(session, scope, action=Action.ASSET_REJECTED),
        recall=recall,
        recall_source=recall_source,
        policies=policy.policy_versions(session, dataset, scope),
        current_policy=current,
        current_policy_source=source,
        policy_actions=[c for c in lineage.actions(session, scope) if c.key in POLICY_CHANGES],
        actions=lineage.actions(session, scope),
        span=lineage.record_span(session, scope),
        processing_regions=lineage.regions(session, scope),
        storage_regions=lineage.storage_regions(session, scope),
        recipients=ls.recipients(session, scope),
        blocked=lineage.blocked_transfers(session, scope),
        deletions=lineage.events(session, scope, actions=[*DELETIONS, *RETENTION]),
        erasures=lineage.events(session, scope, actions=ERASURE),
        due=policy.due_next(session, dataset, current, now=now),
        holds=policy.legal_holds(session, dataset.id),
        erasure_register=policy.erasure_register(session, scope),
        quality=ls.annotation_quality(session, scope, dataset.ontology),
        incidents=ls.incidents(session, scope),
        key_rows=key_rows(session, dataset.id),
        vault_entries=policy.vault_entries(session, dataset.id),
        api_keys=active_api_keys(session, dataset.id, now=now),
        lineage=lineage_state or lineage.lineage_section(session, scope),
        reviews=reviews,
        calibration=review.calibration_counts(session, scope),
        review_versions=review.version_names(session, reviews),
    )


def dimensions(session: Session, scope: Scope) -> dict[str, int | None]:
    stmt = select(
        func.min(Asset.width),
        func.max(Asset.width),
        func.min(Asset.height),
        func.max(Asset.height),
        func.sum(Asset.byte_size),
    )
    for clause in assets.asset_filter(scope):
        stmt = stmt.where(clause)
    row = run(session, stmt).one()
    names = ("min_width", "max_width", "min_height", "max_height", "total_bytes")
    return {n: (int(v) if v is not None else None) for n, v in zip(names, row, strict=True)}


def key_rows(session: Session, dataset_id: str) -> dict[str, int]:
    rows = (
        run(session, select(DatasetKey).where(col(DatasetKey.dataset_id) == dataset_id))
        .scalars()
        .all()
    )
    return {
        "versions": len(rows),
        "shredded": sum(1 for r in rows if r.shredded_at is not None or r.wrapped is None),
    }


def active_api_keys(session: Session, dataset_id: str, *, now: datetime) -> list[Count]:
    """Active API keys that can reach this dataset, per role (access control, Art. 32)."""
    found: dict[str, int] = {}
    for key in run(session, select(ApiKey).where(col(ApiKey.revoked_at).is_(None))).scalars().all():
        expired = key.expires_at is not None and iso(key.expires_at) <= iso(now)  # type: ignore[operator]
        if expired or (key.dataset_scope is not None and dataset_id not in key.dataset_scope):
            continue
        found[str(key.role)] = found.get(str(key.role), 0) + 1
    return [Count(key=k, count=v) for k, v in sorted(found.items())]
