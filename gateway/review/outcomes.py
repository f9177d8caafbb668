"""What the review decided, read for the governance report (residual leak, reviewer recall,
review time). A plain query over `ReviewItem`; the report does the statistics."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session, col, select

from gateway.review.models import ReviewItem


@dataclass(frozen=True)
class ReviewOutcome:
    """One review item as the report sees it. `decision` is None while the item is open;
    `ignored` rows are decisions by someone who was not a reviewer (they changed nothing).
    `findings` are (label, count) pairs sorted by label; `original_available` is False when
    retention had already deleted the original (the review could only reject)."""

    item_id: str
    dataset_id: str
    asset_id: str
    reason: str
    sample_ref: str | None
    opened_at: datetime
    decided_at: datetime | None
    decision: str | None
    reviewer: str | None
    findings: tuple[tuple[str, int], ...]
    lead_time_seconds: float | None
    policy_version_id: str | None
    ls_task_id: int | None
    original_available: bool

    @property
    def found_anything(self) -> bool:
        return any(count > 0 for _, count in self.findings)


def review_outcomes(session: Session, dataset_id: str) -> list[ReviewOutcome]:
    """Every review item of the dataset, oldest first (open ones included)."""
    rows = session.exec(
        select(ReviewItem)
        .where(ReviewItem.dataset_id == dataset_id)
        .order_by(col(ReviewItem.opened_at), col(ReviewItem.id))
    ).all()
    return [_outcome(row) for row in rows]


def _outcome(row: ReviewItem) -> ReviewOutcome:
    return ReviewOutcome(
        item_id=row.id,
        dataset_id=row.dataset_id,
        asset_id=row.asset_id,
        reason=row.reason,
        sample_ref=row.sample_ref,
        opened_at=row.opened_at,
        decided_at=row.decided_at,
        decision=row.decision,
        reviewer=row.reviewer,
        findings=tuple(sorted((str(k), int(v)) for k, v in (row.findings or {}).items())),
        lead_time_seconds=row.lead_time_seconds,
        policy_version_id=row.policy_version_id,
        ls_task_id=row.ls_task_id,
        original_available=row.original_available,
    )
