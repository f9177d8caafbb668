"""What the review loop decided, for the residual-leak estimate and reviewer recall."""

from __future__ import annotations

from typing import Any

from sqlmodel import Session

from gateway.reports.calibration import planted_found
from gateway.reports.leak_estimate import RecallCount, Reviewed
from gateway.reports.query import Scope, as_utc


def _outcomes(session: Session, scope: Scope) -> list[Any]:
    try:
        from gateway.review.outcomes import review_outcomes
    except ImportError:  # the review loop is not part of this build yet
        return []
    if scope.dataset_id is None:
        return []
    return [
        o
        for o in review_outcomes(session, scope.dataset_id)
        if (scope.start is None or as_utc(o.opened_at) >= as_utc(scope.start))
        and (scope.end is None or as_utc(o.opened_at) < as_utc(scope.end))
    ]


def review_items(session: Session, scope: Scope) -> list[Reviewed]:
    return list(_outcomes(session, scope))


def calibration_counts(session: Session, scope: Scope) -> list[RecallCount]:
    """Planted faces and those the reviewer hit, per decided calibration item."""
    found = []
    for outcome in _outcomes(session, scope):
        if outcome.reason != "calibration" or outcome.decision not in {"released", "rejected"}:
            continue
        manifest = getattr(outcome, "calibration", None) or {}
        visible = manifest.get("visible", [])
        drawn = getattr(outcome, "face_boxes", None)
        if drawn is not None:
            found.append(planted_found(visible, drawn))
        else:  # counted, not matched by position: can only overstate recall
            faces = dict(outcome.findings).get("face", 0)
            found.append(RecallCount(planted=len(visible), found=min(faces, len(visible))))
    return found
