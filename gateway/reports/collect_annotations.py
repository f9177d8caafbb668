"""Label Studio side: recipients, annotations coming back, incidents.

The `annotation` and `incident` tables belong to the Label Studio sync; they are
read by name, so a report works in a build without them ("nothing recorded yet").
"""

from __future__ import annotations

import importlib
import json
from collections import Counter, defaultdict
from collections.abc import Hashable, Iterable, Mapping
from contextlib import suppress
from dataclasses import dataclass, field
from itertools import combinations
from typing import Any

from sqlalchemy import Table, distinct, func, inspect, select
from sqlmodel import Session, SQLModel, col

from gateway.core.models import Asset, AssetSync, Destination, SyncState
from gateway.reports.agreement import (
    Box,
    BoxAgreement,
    box_agreement,
    cohens_kappa_table,
    krippendorff_alpha_table,
)
from gateway.reports.collect_assets import asset_filter
from gateway.reports.model import AnnotationQuality, Count, Incident, KappaPair, Recipient
from gateway.reports.query import Scope, iso, ratio, run

IOU_THRESHOLD = 0.5
TABLE_MODULES = (
    "gateway.labelstudio.tables",
    "gateway.policy.tables",
    "gateway.pseudonymisation.tables",
)
PRIVACY_FLAG_NAME = "privacy_flag"  # gateway.labelstudio.config: annotators' leak reports
METHOD = (
    "Boxes of two annotators on the same image are matched one-to-one, greedily by descending "
    "IoU, pairs with IoU >= 0.5 counting as agreeing; box F1 = 2 x matched / all boxes. Cohen's "
    "kappa compares the labels of matched boxes, and the choices of each pair of annotators on "
    "the same items; Krippendorff's alpha (nominal) covers choices by any number of "
    "annotators. Computed by the gateway from the annotations it holds (Label Studio's "
    "review workflow is an Enterprise feature)."
)


def table(session: Session, name: str) -> Table | None:
    """Another module's table by name, if the schema has it: the sync's annotations and
    incidents, the policy engine's holds and erasure register. Reading by name keeps the
    report working in a build without them ("nothing recorded yet")."""
    for module in TABLE_MODULES:
        with suppress(ImportError):
            importlib.import_module(module)
    found = SQLModel.metadata.tables.get(name)
    if found is None or not inspect(session.connection()).has_table(name):
        return None
    return found


def recipients(session: Session, scope: Scope) -> list[Recipient]:
    """Label Studio destinations that received this dataset's redacted assets."""
    stmt = (
        select(
            col(Destination.name),
            col(Destination.region),
            col(Destination.transfer_basis),
            func.count(distinct(col(AssetSync.asset_id))),
        )
        .join(AssetSync, col(AssetSync.destination_id) == col(Destination.id))
        .join(Asset, col(Asset.id) == col(AssetSync.asset_id))
        .where(col(AssetSync.state).in_([SyncState.SYNCED.value, SyncState.REMOVED.value]))
    )
    for clause in asset_filter(scope):
        stmt = stmt.where(clause)
    keys = (col(Destination.name), col(Destination.region), col(Destination.transfer_basis))
    rows = run(session, stmt.group_by(*keys)).all()
    return [
        Recipient(
            name=n, kind="Label Studio destination", region=r, assets_sent=int(c), transfer_basis=b
        )
        for n, r, b, c in sorted(rows, key=lambda row: (row[0], row[1]))
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
    stmt = stmt.order_by(annotations.c.asset_id, annotations.c.id)
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
    """Image-level label choices; the privacy flag is an incident report, not a label."""
    return {
        str(r.get("from_name", "choice")): "|".join(sorted(map(str, r["value"]["choices"])))
        for r in results
        if r.get("type") == "choices"
        and r.get("value", {}).get("choices")
        and r.get("from_name") != PRIVACY_FLAG_NAME
    }


def annotation_quality(
    session: Session, scope: Scope, ontology: dict[str, Any]
) -> AnnotationQuality | None:
    annotations = table(session, "annotation")
    if annotations is None:
        return None
    quality = quality_from_rows(_annotation_rows(session, scope, annotations), ontology)
    if not quality.annotations:
        return None
    live = _in_label_studio(session, scope, annotations)
    return quality.model_copy(
        update={"in_label_studio": live, "kept_from_withdrawn_tasks": quality.annotations - live}
    )


def _in_label_studio(session: Session, scope: Scope, annotations: Table) -> int:
    """Submitted annotations whose task is still in Label Studio: the asset's sync row towards
    that destination is synced and names the same task (a withdrawn task's row is removed)."""
    stmt = (
        select(func.count())
        .select_from(annotations)
        .join(Asset, col(Asset.id) == annotations.c.asset_id)
        .join(
            AssetSync,
            (col(AssetSync.asset_id) == annotations.c.asset_id)
            & (col(AssetSync.destination_id) == annotations.c.destination_id)
            & (col(AssetSync.task_id) == annotations.c.task_id),
        )
        .where(col(AssetSync.state) == SyncState.SYNCED)
        .where(annotations.c.was_cancelled.is_(False))
    )
    for clause in asset_filter(scope):
        stmt = stmt.where(clause)
    if "deleted_at" in annotations.c:
        stmt = stmt.where(annotations.c.deleted_at.is_(None))
    return int(run(session, stmt).one()[0])


@dataclass
class _Tally:
    """Running totals, so annotations stream through one asset at a time."""

    total: int = 0  # submitted, as Label Studio's total_annotations_number counts them
    cancelled: int = 0
    assets: int = 0
    overlap: int = 0
    comparisons: int = 0
    boxes: int = 0
    matched: int = 0
    iou_sum: float = 0.0
    per_annotator: Counter[str] = field(default_factory=Counter)
    labels: Counter[str] = field(default_factory=Counter)
    box_labels: Counter[tuple[Hashable, Hashable]] = field(default_factory=Counter)
    choice_pairs: dict[tuple[str, str], Counter[tuple[Hashable, Hashable]]] = field(
        default_factory=lambda: defaultdict(Counter)
    )
    units: Counter[tuple[str, ...]] = field(default_factory=Counter)

    def add_asset(self, rows: list[tuple[str, Any]]) -> None:
        boxes: dict[str, list[Box]] = {}
        choices: dict[str, dict[str, str]] = defaultdict(dict)
        for annotator, raw in rows:
            self.per_annotator[annotator] += 1
            results = _results(raw)
            boxes[annotator] = _boxes(results)
            self.labels.update(b.label for b in boxes[annotator])
            for name, value in _choices(results).items():
                choices[name][annotator] = value
                self.labels.update(value.split("|"))
        self.assets += 1
        if len(boxes) >= 2:
            self.overlap += 1
            agreement, label_pairs = box_agreement({0: boxes}, threshold=IOU_THRESHOLD)
            self.comparisons += agreement.comparisons
            self.boxes += agreement.boxes
            self.matched += agreement.matched_pairs
            self.iou_sum += agreement.iou_sum
            self.box_labels.update(label_pairs)
        for by_annotator in choices.values():
            for a, b in combinations(sorted(by_annotator), 2):
                self.choice_pairs[(a, b)][(by_annotator[a], by_annotator[b])] += 1
            if len(by_annotator) >= 2:
                self.units[tuple(sorted(by_annotator.values()))] += 1


def quality_from_rows(
    rows: Iterable[tuple[str, str, Any, bool]], ontology: dict[str, Any]
) -> AnnotationQuality:
    """Agreement and counts from (asset id, annotator pseudonym, LS result, was_cancelled),
    ordered by asset id; memory stays bounded by one asset's annotations."""
    tally = _Tally()
    current: str | None = None
    pending: list[tuple[str, Any]] = []
    for asset_id, annotator, raw, was_cancelled in rows:
        if was_cancelled:  # Label Studio's "skipped": not in its annotation count either
            tally.cancelled += 1
            continue
        tally.total += 1
        if asset_id != current and pending:
            tally.add_asset(pending)
            pending = []
        current = asset_id
        pending.append((str(annotator), raw))
    if pending:
        tally.add_asset(pending)
    return _quality(tally, ontology)


def _quality(t: _Tally, ontology: dict[str, Any]) -> AnnotationQuality:
    totals = BoxAgreement(t.comparisons, t.boxes, t.matched, 0, t.iou_sum)
    return AnnotationQuality(
        annotations=t.total,
        cancelled=t.cancelled,
        assets_annotated=t.assets,
        assets_with_overlap=t.overlap,
        overlap_coverage=ratio(t.overlap / t.assets) if t.assets else None,
        per_annotator=_sorted(t.per_annotator),
        label_distribution=_sorted(t.labels),
        subgroup_distribution=_subgroups(t.labels, ontology),
        box_comparisons=t.comparisons,
        box_matched_pairs=t.matched,
        box_f1=ratio(totals.f1),
        box_mean_iou=ratio(totals.mean_iou),
        box_label_kappa=ratio(cohens_kappa_table(t.box_labels)),
        choice_kappa_pairs=[
            KappaPair(
                annotator_a=a,
                annotator_b=b,
                items=sum(table.values()),
                kappa=ratio(cohens_kappa_table(table)),
            )
            for (a, b), table in sorted(t.choice_pairs.items())
        ],
        choice_alpha=ratio(krippendorff_alpha_table(t.units)),
        choice_units=sum(t.units.values()),
        iou_threshold=f"{IOU_THRESHOLD:.2f}",
        method=METHOD,
    )


def _sorted(values: Mapping[str, int]) -> list[Count]:
    return [
        Count(key=k, count=v) for k, v in sorted(values.items(), key=lambda kv: (-kv[1], kv[0]))
    ]


def _subgroups(labels: Mapping[str, int], ontology: dict[str, Any]) -> list[Count]:
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
