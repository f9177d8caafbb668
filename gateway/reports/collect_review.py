"""What the review loop decided, for the residual-leak estimate and reviewer recall.

A calibration item (reason `calibration`) carries its manifest in `details["calibration"]`
(`CalibrationItem.manifest()`: which faces were left visible) and, once decided, the face
boxes the reviewer drew in `details["face_boxes"]` (pixels). Without those boxes only the
reviewer's face count is known, which can only overstate recall; the section says which."""

from __future__ import annotations

from typing import Any

from sqlmodel import Session, col, select

from gateway.core.models import PolicyVersion
from gateway.reports.calibration import planted_found
from gateway.reports.leak_estimate import DECIDED, RecallCount, Reviewed
from gateway.reports.query import Scope, as_utc
from gateway.review.models import ReviewItem, ReviewReason
from gateway.review.outcomes import review_outcomes


def _within(scope: Scope, opened_at: Any) -> bool:
    return (scope.start is None or as_utc(opened_at) >= as_utc(scope.start)) and (
        scope.end is None or as_utc(opened_at) < as_utc(scope.end)
    )


def review_items(session: Session, scope: Scope) -> list[Reviewed]:
    if scope.dataset_id is None:
        return []
    return [o for o in review_outcomes(session, scope.dataset_id) if _within(scope, o.opened_at)]


def version_names(session: Session, items: list[Reviewed]) -> dict[str, str]:
    """How the report names each policy version a review item recorded ("name vN")."""
    ids = sorted({i.policy_version_id for i in items if i.policy_version_id})
    if not ids:
        return {}
    rows = session.exec(select(PolicyVersion).where(col(PolicyVersion.id).in_(ids))).all()
    return {r.id: f"{r.name} v{r.version}" for r in rows}


def calibration_counts(session: Session, scope: Scope) -> list[RecallCount]:
    """Planted faces and those the reviewer hit, per decided calibration item."""
    if scope.dataset_id is None:
        return []
    stmt = select(ReviewItem).where(
        col(ReviewItem.dataset_id) == scope.dataset_id,
        col(ReviewItem.reason) == ReviewReason.CALIBRATION.value,
        col(ReviewItem.decision).in_(sorted(DECIDED)),
    )
    found = []
    for row in session.exec(stmt).all():
        if not _within(scope, row.opened_at):
            continue
        details = row.details or {}
        visible = (details.get("calibration") or {}).get("visible", [])
        drawn = details.get("face_boxes")
        if isinstance(drawn, list):
            boxes = [(float(x), float(y), float(w), float(h)) for x, y, w, h in drawn]
            found.append(planted_found(visible, boxes))
        else:  # counted, not matched by position
            faces = int((row.findings or {}).get("face", 0))
            found.append(RecallCount(planted=len(visible), found=min(faces, len(visible))))
    return found
