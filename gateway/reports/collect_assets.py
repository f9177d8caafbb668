"""Assets, detections and redaction outcomes, aggregated in the database."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sqlalchemy import Integer, cast, distinct, func, select
from sqlmodel import Session, col

from gateway.core.models import Asset, Detection, LineageRecord
from gateway.lineage.actions import REDACTION_RUNS, Action
from gateway.reports.model import Count, DetectorUse, RecallFigure
from gateway.reports.query import Scope, counts, grouped, json_text, run
from gateway.review.models import ReviewItem, ReviewReason

BENCH_RESULTS = Path(__file__).resolve().parents[2] / "bench" / "results"


def asset_filter(scope: Scope) -> list[Any]:
    """The dataset's assets in the period, without calibration images (bundled public photos
    in the review queue to measure reviewer recall: not data of the dataset)."""
    calibration = select(col(ReviewItem.asset_id)).where(
        col(ReviewItem.reason) == ReviewReason.CALIBRATION.value
    )
    clauses: list[Any] = [col(Asset.id).not_in(calibration)]
    if scope.dataset_id is not None:
        clauses.append(col(Asset.dataset_id) == scope.dataset_id)
    if scope.start is not None:
        clauses.append(col(Asset.created_at) >= scope.start)
    if scope.end is not None:
        clauses.append(col(Asset.created_at) < scope.end)
    return clauses


def assets_by_state(session: Session, scope: Scope) -> list[Count]:
    return counts(session, grouped(col(Asset.state), *asset_filter(scope)))


def originals_deleted(session: Session, scope: Scope) -> dict[str, int]:
    """Assets whose original is no longer stored, by their (unchanged) lifecycle state: a
    released asset stays released and a quarantined one quarantined after retention."""
    stmt = (
        select(col(Asset.state), func.count())
        .where(col(Asset.original_deleted_at).is_not(None), *asset_filter(scope))
        .group_by(col(Asset.state))
    )
    return {str(k): int(n) for k, n in run(session, stmt).all()}


def originals_stored(session: Session, scope: Scope) -> int:
    """Assets whose encrypted original is in the store now."""
    stmt = select(func.count()).where(col(Asset.original_blob).is_not(None), *asset_filter(scope))
    return int(run(session, stmt).scalar_one())


def _detections(session: Session, scope: Scope, *keys: Any) -> Any:
    stmt = select(*keys, func.count()).join(Asset, col(Asset.id) == col(Detection.asset_id))
    for clause in asset_filter(scope):
        stmt = stmt.where(clause)
    return run(session, stmt.group_by(*keys)).all()


def regions_by_label(session: Session, scope: Scope, *, stage: str) -> list[Count]:
    rows = _detections(session, scope, col(Detection.label), col(Detection.stage))
    found = [Count(key=str(label), count=int(n)) for label, s, n in rows if s == stage]
    return sorted(found, key=lambda c: (-c.count, c.key))


def detector_use(session: Session, scope: Scope) -> list[DetectorUse]:
    rows = _detections(
        session, scope, col(Detection.detector), col(Detection.label), col(Detection.stage)
    )
    return sorted(
        (DetectorUse(detector=d, label=lab, stage=s, regions=int(n)) for d, lab, s, n in rows),
        key=lambda u: (u.stage, u.label, u.detector),
    )


def assets_with_regions(session: Session, scope: Scope) -> int:
    stmt = select(func.count(distinct(col(Detection.asset_id)))).join(
        Asset, col(Asset.id) == col(Detection.asset_id)
    )
    for clause in asset_filter(scope):
        stmt = stmt.where(clause)
    return int(run(session, stmt).scalar_one())


def reason_codes(session: Session, scope: Scope, *, action: Action) -> list[Count]:
    """Reason codes of quarantines/rejections, from the lineage records (codes only)."""
    code = json_text(session, col(LineageRecord.payload), "parameters", "reasons")
    stmt = scope.lineage(grouped(code, col(LineageRecord.action) == action))
    merged: dict[str, int] = {}
    for entry in counts(session, stmt):
        for reason in json.loads(entry.key) if entry.key.startswith("[") else [entry.key]:
            merged[str(reason)] = merged.get(str(reason), 0) + entry.count
    return [
        Count(key=k, count=v) for k, v in sorted(merged.items(), key=lambda kv: (-kv[1], kv[0]))
    ]


REDACTION_LABELS = ("face", "plate", "text")


def regions_recorded(session: Session, scope: Scope) -> list[Count]:
    """Regions per label of each asset's current rendition (its latest redaction run, so
    re-processing does not count twice), from the lineage records (these survive the
    deletion of an asset's detections by retention or erasure)."""
    labels = sorted(
        set(REDACTION_LABELS)
        | {str(v) for v in run(session, select(col(Detection.label)).distinct()).scalars()}
    )
    done = col(LineageRecord.action).in_(REDACTION_RUNS)
    payload = col(LineageRecord.payload)
    sums = [
        func.sum(cast(json_text(session, payload, "parameters", "regions", label), Integer))
        for label in labels
    ]
    redacted = json_text(session, payload, "parameters", "regions").is_not(None)  # a run's
    latest = scope.lineage(  # record, not a later hold or flag
        select(func.max(col(LineageRecord.seq)))
        .where(done, redacted)
        .group_by(col(LineageRecord.entity_id))
    )
    row = run(session, select(*sums).where(col(LineageRecord.seq).in_(latest))).one()
    found = [Count(key=k, count=int(v)) for k, v in zip(labels, row, strict=True) if v]
    return sorted(found, key=lambda c: (-c.count, c.key))


def tools_and_policies(session: Session, scope: Scope) -> tuple[list[str], list[str]]:
    """Distinct detector/model versions and redaction policy digests the pipeline recorded."""
    done = col(LineageRecord.action).in_(REDACTION_RUNS)
    tools_json = json_text(session, col(LineageRecord.payload), "parameters", "tools")
    digest = json_text(session, col(LineageRecord.payload), "parameters", "redaction_policy_sha256")
    tools: set[str] = set()
    for entry in counts(session, scope.lineage(grouped(tools_json, done))):
        for tool in json.loads(entry.key) if entry.key.startswith("[") else []:
            tools.add(", ".join(f"{k}={v}" for k, v in sorted(tool.items())))
    digests = {c.key for c in counts(session, scope.lineage(grouped(digest, done))) if c.key}
    return sorted(tools), sorted(digests)


def measured_recall(results_dir: Path = BENCH_RESULTS) -> tuple[list[RecallFigure], str | None]:
    """The newest committed redaction benchmark (bench/results), gateway rows only."""
    files = sorted(results_dir.glob("redaction-*.json")) if results_dir.is_dir() else []
    if not files:
        return [], None
    latest = files[-1]
    data = json.loads(latest.read_text(encoding="utf-8"))
    figures: list[RecallFigure] = []
    for set_name, per_tool in sorted(data.get("sets", {}).items()):
        labels = per_tool.get("gateway", {}).get("score", {}).get("labels", {})
        for label, score in sorted(labels.items()):
            if "recall@0.9" in score and "boxes" in score:
                figures.append(
                    RecallFigure(
                        data_set=set_name,
                        label=label,
                        boxes=int(score["boxes"]),
                        recall=f"{float(score['recall@0.9']):.3f}",
                        threshold="0.9 of each box's area covered",
                    )
                )
    source = f"bench/results/{latest.name} ({data.get('date', 'undated')})"
    return figures, source
