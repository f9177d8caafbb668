"""Label Studio side: recipients, annotations coming back, incidents.

The `annotation` and `incident` tables belong to the Label Studio sync (contract 5); they are
read by name with reflection, so a report works before they exist ("nothing recorded yet").
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Hashable, Iterable
from itertools import combinations
from typing import Any

from sqlalchemy import MetaData, Table, distinct, func, inspect, select
from sqlmodel import Session, col

from gateway.models import Asset, AssetSync, Destination, SyncState
from gateway.reports.agreement import Box, box_agreement, cohens_kappa, krippendorff_alpha_nominal
from gateway.reports.collect_assets import asset_filter
from gateway.reports.model import AnnotationQuality, Count, Incident, KappaPair, Recipient
from gateway.reports.query import Scope, iso, ratio, run

IOU_THRESHOLD = 0.5
METHOD = (
    "Boxes of two annotators on the same image are matched one-to-one, greedily by descending "
    "IoU, pairs with IoU >= 0.5 counting as agreeing; box F1 = 2 x matched / all boxes. Cohen's "
    "kappa compares the labels of matched boxes, and the choices of each pair of annotators on "
    "the same items; Krippendorff's alpha (nominal) covers choices by any number of "
    "annotators. Computed by the gateway from the annotations it holds (Label Studio's "
    "review workflow is an Enterprise feature)."
)


def table(session: Session, name: str) -> Table | None:
    connection = session.connection()  # the session's own: SQLite allows one writer
    if not inspect(connection).has_table(name):
        return None
    return Table(name, MetaData(), autoload_with=connection)


def recipients(session: Session, scope: Scope) -> list[Recipient]:
    """Label Studio destinations that received this dataset's redacted assets."""
    stmt = (
        select(
            col(Destination.name),
            col(Destination.region),
            func.count(distinct(col(AssetSync.asset_id))),
        )
        .join(AssetSync, col(AssetSync.destination_id) == col(Destination.id))
        .join(Asset, col(Asset.id) == col(AssetSync.asset_id))
        .where(col(AssetSync.state).in_([SyncState.SYNCED.value, SyncState.REMOVED.value]))
    )
    for clause in asset_filter(scope):
        stmt = stmt.where(clause)
    rows = run(session, stmt.group_by(col(Destination.name), col(Destination.region))).all()
    return [
        Recipient(name=n, kind="Label Studio destination", region=r, assets_sent=int(c))
        for n, r, c in sorted(rows)
    ]


def _annotation_rows(session: Session, scope: Scope, annotations: Table) -> Any:
    stmt = select(
        annotations.c.asset_id,
        annotations.c.annotator,
        annotations.c.result,
        annotations.c.was_cancelled,
    ).join(Asset, col(Asset.id) == annotations.c.asset_id)
    for clause in asset_filter(scope):
        stmt = stmt.where(clause)
    if "deleted_at" in annotations.c:  # annotations deleted in Label Studio no longer count
        stmt = stmt.where(annotations.c.deleted_at.is_(None))
    return run(session, stmt.execution_options(yield_per=2000))


def _results(raw: Any) -> list[dict[str, Any]]:
    value = json.loads(raw) if isinstance(raw, str | bytes) else raw
    return [r for r in value or [] if isinstance(r, dict)]


def _boxes(results: Iterable[dict[str, Any]]) -> list[Box]:
    boxes = []
    for r in results:
        value = r.get("value", {})
        labels = value.get("rectanglelabels") or value.get("labels")
        if r.get("type") in ("rectanglelabels", "rectangle") and {"x", "y", "width"} <= set(value):
            boxes.append(
                Box(
                    float(value["x"]),
                    float(value["y"]),
                    float(value["width"]),
                    float(value["height"]),
                    str(labels[0]) if labels else "",
                )
            )
    return boxes


def _choices(results: Iterable[dict[str, Any]]) -> dict[str, str]:
    return {
        str(r.get("from_name", "choice")): "|".join(sorted(map(str, r["value"]["choices"])))
        for r in results
        if r.get("type") == "choices" and r.get("value", {}).get("choices")
    }


def annotation_quality(
    session: Session, scope: Scope, ontology: dict[str, Any]
) -> AnnotationQuality | None:
    annotations = table(session, "annotation")
    if annotations is None:
        return None
    quality = quality_from_rows(_annotation_rows(session, scope, annotations), ontology)
    return quality if quality.annotations else None


def quality_from_rows(
    rows: Iterable[tuple[str, str, Any, bool]], ontology: dict[str, Any]
) -> AnnotationQuality:
    """Agreement and counts from (asset id, annotator pseudonym, LS result, was_cancelled)."""
    per_annotator: dict[str, int] = defaultdict(int)
    labels: dict[str, int] = defaultdict(int)
    boxes: dict[Hashable, dict[str, list[Box]]] = defaultdict(dict)
    choices: dict[tuple[str, str], dict[str, str]] = defaultdict(dict)
    total = cancelled = 0
    for asset_id, annotator, raw, was_cancelled in rows:
        total += 1
        if was_cancelled:
            cancelled += 1
            continue
        per_annotator[str(annotator)] += 1
        results = _results(raw)
        found = _boxes(results)
        boxes[asset_id][str(annotator)] = found
        for box in found:
            labels[box.label] += 1
        for name, value in _choices(results).items():
            choices[(asset_id, name)][str(annotator)] = value
            for one in value.split("|"):
                labels[one] += 1
    return _quality(total, cancelled, per_annotator, labels, boxes, choices, ontology)


def _quality(
    total: int,
    cancelled: int,
    per_annotator: dict[str, int],
    labels: dict[str, int],
    boxes: dict[Hashable, dict[str, list[Box]]],
    choices: dict[tuple[str, str], dict[str, str]],
    ontology: dict[str, Any],
) -> AnnotationQuality:
    overlap = {a: by for a, by in boxes.items() if len(by) >= 2}
    agreement, label_pairs = box_agreement(overlap, threshold=IOU_THRESHOLD)
    pair_items: dict[tuple[str, str], list[tuple[str, str]]] = defaultdict(list)
    for by_annotator in choices.values():
        for a, b in combinations(sorted(by_annotator), 2):
            pair_items[(a, b)].append((by_annotator[a], by_annotator[b]))
    units = [list(v.values()) for v in choices.values() if len(v) >= 2]
    return AnnotationQuality(
        annotations=total,
        cancelled=cancelled,
        assets_annotated=len(boxes),
        assets_with_overlap=len(overlap),
        overlap_coverage=ratio(len(overlap) / len(boxes)) if boxes else None,
        per_annotator=_sorted(per_annotator),
        label_distribution=_sorted(labels),
        subgroup_distribution=_subgroups(labels, ontology),
        box_comparisons=agreement.comparisons,
        box_matched_pairs=agreement.matched_pairs,
        box_f1=ratio(agreement.f1),
        box_mean_iou=ratio(agreement.mean_iou),
        box_label_kappa=ratio(cohens_kappa(label_pairs)),
        choice_kappa_pairs=[
            KappaPair(
                annotator_a=a, annotator_b=b, items=len(items), kappa=ratio(cohens_kappa(items))
            )
            for (a, b), items in sorted(pair_items.items())
        ],
        choice_alpha=ratio(krippendorff_alpha_nominal(units)),
        choice_units=len(units),
        iou_threshold=f"{IOU_THRESHOLD:.2f}",
        method=METHOD,
    )


def _sorted(values: dict[str, int]) -> list[Count]:
    return [
        Count(key=k, count=v) for k, v in sorted(values.items(), key=lambda kv: (-kv[1], kv[0]))
    ]


def _subgroups(labels: dict[str, int], ontology: dict[str, Any]) -> list[Count]:
    """Annotation counts per ontology subgroup, where the ontology defines subgroups."""
    groups: dict[str, int] = defaultdict(int)
    for label in ontology.get("labels", []):
        if label.get("subgroup"):
            groups[f"{label['subgroup']}: {label['name']}"] += labels.get(label["name"], 0)
    return _sorted(groups)


def incidents(session: Session, scope: Scope) -> list[Incident]:
    found = table(session, "incident")
    if found is None:
        return []
    stmt = select(
        found.c.kind, found.c.reason, found.c.asset_id, found.c.opened_at, found.c.closed_at
    ).join(Asset, col(Asset.id) == found.c.asset_id)
    for clause in asset_filter(scope):
        stmt = stmt.where(clause)
    rows = run(session, stmt.order_by(found.c.opened_at).limit(1000)).all()
    return [
        Incident(
            kind=str(kind),
            reason=str(reason),
            asset_id=asset_id,
            opened_at=iso(opened) or "",
            closed_at=iso(closed),
        )
        for kind, reason, asset_id, opened, closed in rows
    ]
