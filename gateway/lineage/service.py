"""Use cases over the ledger: export (behind the residency check), history queries, proofs.

An export checks residency for every dataset whose records leave (`check_export_residency`)
and hands the `Clearances` it gets to the writer, which refuses any record they do not cover
(`gateway.lineage.bundle.cleared_records`): the bundle and the OpenLineage and PROV views alike.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlmodel import Session, col, select

from gateway.core.clearance import Clearances
from gateway.core.errors import InvalidRequest, NotFound
from gateway.core.models import Asset, LineageRecord
from gateway.datasets import get_dataset
from gateway.lineage.actions import Action
from gateway.lineage.bundle import BundleFilter, cleared_records, export_bundle, select_records
from gateway.lineage.checkpoints import create_checkpoint, get_checkpoint, leaf_hashes
from gateway.lineage.format.merkle import Tree
from gateway.lineage.interop import openlineage_lines, prov_document
from gateway.lineage.ledger import Actor
from gateway.lineage.writer import recorder
from gateway.policy.enforcement import EnforcementPoint, enforce_residency

if TYPE_CHECKING:
    from gateway.core.context import GatewayContext

FORMATS = ("bundle", "openlineage", "prov")


def datasets_in_scope(session: Session, flt: BundleFilter) -> list[str]:
    if flt.dataset_id is not None:
        return [flt.dataset_id]
    stmt = select(LineageRecord.dataset_id).where(col(LineageRecord.dataset_id).is_not(None))
    if flt.since is not None:
        stmt = stmt.where(col(LineageRecord.created_at) >= flt.since)
    return sorted({d for d in session.exec(stmt.distinct()) if d is not None})


def check_export_residency(
    ctx: GatewayContext, session: Session, flt: BundleFilter, *, target_region: str, actor: Actor
) -> Clearances:
    """Every dataset whose records leave must allow export to `target_region` (checked each):
    their clearances, which the export's writer requires."""
    return Clearances(
        tuple(
            enforce_residency(
                ctx,
                session,
                point=EnforcementPoint.EXPORT,
                dataset_id=dataset_id,
                target_region=target_region,
                actor=actor,
                entity_type="dataset",
                entity_id=dataset_id,
            )
            for dataset_id in datasets_in_scope(session, flt)
        )
    )


def export_lineage(
    ctx: GatewayContext,
    session: Session,
    path: Path,
    *,
    fmt: str,
    dataset_ref: str | None,
    since: datetime | None,
    target_region: str,
    actor: Actor,
) -> str:
    """Write an export after the residency check, and record the export in lineage."""
    if fmt not in FORMATS:
        raise InvalidRequest(f"unknown export format {fmt!r}", formats=list(FORMATS))
    dataset_id = None
    if dataset_ref is not None:
        dataset_id = get_dataset(session, dataset_ref).id
    if since is not None and since.tzinfo is None:
        since = since.replace(tzinfo=UTC)  # the gateway records UTC; a bare time means UTC
    flt = BundleFilter(dataset_id=dataset_id, since=since)
    cleared = check_export_residency(ctx, session, flt, target_region=target_region, actor=actor)
    if fmt == "bundle":
        summary = export_bundle(
            ctx, session, path, flt, clearances=cleared, to_region=target_region
        )
        count, size = summary.records, summary.tree_size
    else:
        size = create_checkpoint(ctx, session).tree_size
        count = write_view(
            session, path, flt, size, fmt, clearances=cleared, to_region=target_region
        )
    recorder(ctx, session, actor).record(
        Action.LINEAGE_EXPORTED,
        entity=dataset_id or "all",
        entity_type="dataset" if dataset_id else "lineage",
        dataset=dataset_id,
        parameters={
            "format": fmt,
            "target_region": target_region,
            "records": count,
            "tree_size": size,
            "datasets": cleared.dataset_ids,
            "since": since.isoformat() if since else None,
        },
    )
    return f"exported {count} records ({fmt}, tree size {size}) to {path}"


def prove_asset(
    ctx: GatewayContext,
    session: Session,
    asset_id: str,
    path: Path,
    *,
    target_region: str,
    actor: Actor,
) -> str:
    """A partial bundle with every record of one asset and its inclusion proofs (an export:
    residency-checked and recorded like one)."""
    asset = session.get(Asset, asset_id)
    if asset is None:
        raise NotFound("no such asset", asset_id=asset_id)
    flt = BundleFilter(dataset_id=asset.dataset_id, entity_id=asset_id)
    cleared = check_export_residency(ctx, session, flt, target_region=target_region, actor=actor)
    summary = export_bundle(ctx, session, path, flt, clearances=cleared, to_region=target_region)
    recorder(ctx, session, actor).record(
        Action.LINEAGE_EXPORTED,
        entity=asset_id,
        entity_type="asset",
        dataset=asset.dataset_id,
        parameters={
            "format": "bundle",
            "target_region": target_region,
            "records": summary.records,
            "tree_size": summary.tree_size,
        },
    )
    return (
        f"{summary.records} records of asset {asset_id} proven against tree size "
        f"{summary.tree_size} in {path}"
    )


def write_view(
    session: Session,
    path: Path,
    flt: BundleFilter,
    size: int,
    fmt: str,
    *,
    clearances: Clearances,
    to_region: str,
) -> int:
    """Write the OpenLineage or PROV view of the records, each under the export's clearances
    (a temporary file first: a refused record leaves nothing at `path`)."""
    records = cleared_records(session, flt, size, clearances=clearances, to_region=to_region)
    pairs = ((r.payload, r.record_hash) for r in records)
    tmp = path.with_name(path.name + ".partial")
    count = 0
    try:
        with tmp.open("w", encoding="utf-8") as fh:
            if fmt == "openlineage":
                for line in openlineage_lines(pairs):
                    fh.write(line + "\n")
                    count += 1
            else:
                doc = prov_document(pairs)
                count = len(doc["activity"])
                json.dump(doc, fh, indent=1, sort_keys=True)
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
    return count


def record_view(row: LineageRecord) -> dict[str, Any]:
    return {"seq": row.seq, "record_hash": row.record_hash, "record": json.loads(row.payload)}


def query_records(
    session: Session,
    *,
    subject: str | None = None,
    entity_type: str | None = None,
    entity_id: str | None = None,
    dataset_id: str | None = None,
    action: str | None = None,
    after_seq: int = 0,
    limit: int = 100,
) -> list[LineageRecord]:
    """Records matching every given filter, in chain order. `subject` is a data subject's
    pseudonym (records about data subjects have entity type "subject")."""
    stmt = select(LineageRecord).where(col(LineageRecord.seq) > after_seq)
    if subject is not None:
        stmt = stmt.where(
            LineageRecord.entity_type == "subject", LineageRecord.entity_id == subject
        )
    if entity_type is not None:
        stmt = stmt.where(LineageRecord.entity_type == entity_type)
    if entity_id is not None:
        stmt = stmt.where(LineageRecord.entity_id == entity_id)
    if dataset_id is not None:
        stmt = stmt.where(LineageRecord.dataset_id == dataset_id)
    if action is not None:
        stmt = stmt.where(LineageRecord.action == action)
    return list(session.exec(stmt.order_by(col(LineageRecord.seq)).limit(limit)).all())


def asset_history(
    session: Session, asset_id: str, *, tree_size: int | None = None
) -> dict[str, Any]:
    """Every record of one asset with an RFC 9162 inclusion proof against a signed checkpoint."""
    cp = get_checkpoint(session, tree_size)
    rows = list(select_records(session, BundleFilter(entity_id=asset_id), cp.tree_size))
    tree = Tree(leaf_hashes(session, cp.tree_size) if rows else [])
    records = []
    for row in rows:
        proof = [p.hex() for p in tree.inclusion_proof(row.seq - 1, cp.tree_size)]
        records.append({**record_view(row), "inclusion_proof": proof})
    return {
        "asset_id": asset_id,
        "checkpoint": {
            "tree_size": cp.tree_size,
            "root_hash": cp.root_hash,
            "body": cp.body,
            "key_id": cp.key_id,
            "signature": cp.signature,
        },
        "records": records,
    }
