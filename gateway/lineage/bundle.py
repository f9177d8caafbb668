"""Export a self-contained lineage bundle: records, signed checkpoints, public keys with their
rotation chain, proofs, and a signed manifest, in the layout of `gateway.lineage.format.bundle`.

A complete bundle (no filter) is verified by walking the chain and recomputing every
checkpoint's root; a partial one (one dataset, since a time, one asset) by an inclusion proof
per record against the newest checkpoint. See `gateway.lineage.format.verify`.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from sqlmodel import Session, col, select

from gateway.core.clearance import Clearances, EnforcementPoint
from gateway.core.models import LineageRecord
from gateway.lineage.checkpoints import create_checkpoint, leaf_hashes, list_checkpoints
from gateway.lineage.format.bundle import (
    BUNDLE_SCHEMA,
    MANIFEST_SCHEMA,
    checkpoint_line,
    entries_digest,
)

# re-exported: the API's key listing (gateway.api.lineage) imports it from here
from gateway.lineage.format.bundle import key_line as key_line
from gateway.lineage.format.merkle import Tree
from gateway.lineage.signing import all_keys, sign_document

if TYPE_CHECKING:
    from gateway.core.context import GatewayContext

BATCH = 5000


@dataclass(frozen=True, slots=True)
class BundleFilter:
    dataset_id: str | None = None
    since: datetime | None = None
    entity_id: str | None = None

    @property
    def complete(self) -> bool:
        return self.dataset_id is None and self.since is None and self.entity_id is None

    def as_dict(self) -> dict[str, Any]:
        return {
            "dataset": self.dataset_id,
            "since": self.since.isoformat() if self.since else None,
            "entity": self.entity_id,
        }


@dataclass(frozen=True, slots=True)
class ExportSummary:
    path: Path
    records: int
    tree_size: int
    checkpoints: int
    keys: int


def select_records(session: Session, flt: BundleFilter, tree_size: int) -> Iterator[LineageRecord]:
    last = 0
    while True:
        stmt = select(LineageRecord).where(
            col(LineageRecord.seq) > last, col(LineageRecord.seq) <= tree_size
        )
        if flt.dataset_id is not None:
            stmt = stmt.where(LineageRecord.dataset_id == flt.dataset_id)
        if flt.entity_id is not None:
            stmt = stmt.where(LineageRecord.entity_id == flt.entity_id)
        if flt.since is not None:
            stmt = stmt.where(col(LineageRecord.created_at) >= flt.since)
        rows = session.exec(stmt.order_by(col(LineageRecord.seq)).limit(BATCH)).all()
        if not rows:
            return
        yield from rows
        last = rows[-1].seq


def cleared_records(
    session: Session,
    flt: BundleFilter,
    tree_size: int,
    *,
    clearances: Clearances,
    to_region: str,
) -> Iterator[LineageRecord]:
    """The records an export writes, each refused (`ClearanceMismatch`) unless the export's
    clearances cover its dataset's export to `to_region`. A record of no dataset (a key
    rotation, a checkpoint) carries no dataset's data and needs none."""
    if flt.dataset_id is not None:  # refused up front, even with no record to write
        clearances.require(EnforcementPoint.EXPORT, dataset_id=flt.dataset_id, region=to_region)
    for rec in select_records(session, flt, tree_size):
        if rec.dataset_id is not None:
            clearances.require(EnforcementPoint.EXPORT, dataset_id=rec.dataset_id, region=to_region)
        yield rec


def write_bundle(
    ctx: GatewayContext,
    session: Session,
    out: IO[str],
    flt: BundleFilter,
    *,
    clearances: Clearances,
    to_region: str,
) -> tuple[int, int, int, int]:
    """Checkpoint the current head, then write the bundle, each record under the export's
    clearances; returns (records, tree size, checkpoints, keys)."""
    if flt.dataset_id is not None:
        clearances.require(EnforcementPoint.EXPORT, dataset_id=flt.dataset_id, region=to_region)
    head = create_checkpoint(ctx, session)
    size = head.tree_size
    exported_at = ctx.clock().isoformat(timespec="microseconds")
    header = {"kind": "header", "schema": BUNDLE_SCHEMA, "exported_at": exported_at}
    _line(out, {**header, "complete": flt.complete, "filter": flt.as_dict(), "tree_size": size})
    keys = all_keys(session)
    for key in keys:
        _line(out, key_line(key))
    checkpoints = list_checkpoints(session, up_to=size)
    for cp in checkpoints:
        _line(out, checkpoint_line(cp))
    tree = None if flt.complete else Tree(leaf_hashes(session, size))
    if tree is not None:
        for cp in checkpoints[:-1]:
            proof = (
                [p.hex() for p in tree.consistency_proof(cp.tree_size, size)]
                if cp.tree_size
                else []
            )
            _line(out, {"kind": "consistency", "from": cp.tree_size, "to": size, "proof": proof})
    entries: list[list[Any]] = []
    for rec in cleared_records(session, flt, size, clearances=clearances, to_region=to_region):
        line: dict[str, Any] = {
            "kind": "record",
            "seq": rec.seq,
            "record_hash": rec.record_hash,
            "payload": rec.payload,
        }
        if tree is not None:
            line["proof"] = [p.hex() for p in tree.inclusion_proof(rec.seq - 1, size)]
        _line(out, line)
        entries.append([rec.seq, rec.record_hash])
    body = {
        "schema": MANIFEST_SCHEMA,
        "exported_at": exported_at,
        "complete": flt.complete,
        "filter": flt.as_dict(),
        "tree_size": size,
        "root_hash": head.root_hash,
        "count": len(entries),
        "entries_sha256": entries_digest(entries),
    }
    envelope = sign_document(ctx, session, body)
    _line(out, {"kind": "manifest", "body": body, "signature": envelope, "entries": entries})
    return len(entries), size, len(checkpoints), len(keys)


def _line(out: IO[str], obj: dict[str, Any]) -> None:
    out.write(json.dumps(obj, separators=(",", ":")))
    out.write("\n")


def export_bundle(
    ctx: GatewayContext,
    session: Session,
    path: Path,
    flt: BundleFilter,
    *,
    clearances: Clearances,
    to_region: str,
) -> ExportSummary:
    """Write to a temporary file first: a failed export (a record its clearances do not
    cover among them) leaves no half bundle behind. `clearances` come from
    `gateway.lineage.service.check_export_residency`."""
    tmp = path.with_name(path.name + ".partial")
    try:
        with tmp.open("w", encoding="utf-8") as out:
            records, size, checkpoints, keys = write_bundle(
                ctx, session, out, flt, clearances=clearances, to_region=to_region
            )
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
    return ExportSummary(path, records, size, checkpoints, keys)
