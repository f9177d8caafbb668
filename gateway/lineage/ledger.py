"""Append lineage records inside the caller's transaction, and walk the chain to verify it."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlmodel import Session, col, select

from gateway.errors import IntegrityFailure
from gateway.lineage.canonical import GENESIS_HASH, SCHEMA, canonical_json, chain_hash
from gateway.models import LineageHead, LineageRecord


@dataclass(frozen=True, slots=True)
class Actor:
    """Who caused a change: an API key id, the CLI operator, or a gateway component."""

    kind: str  # "api-key" | "cli" | "system"
    id: str

    def as_dict(self) -> dict[str, str]:
        return {"kind": self.kind, "id": self.id}


SYSTEM = Actor("system", "gateway")


def append(
    session: Session,
    *,
    action: str,
    entity_type: str,
    entity_id: str,
    actor: Actor,
    now: datetime,
    region: str,
    dataset_id: str | None = None,
    inputs: dict[str, Any] | None = None,
    outputs: dict[str, Any] | None = None,
    parameters: dict[str, Any] | None = None,
) -> LineageRecord:
    """Append one record in the caller's transaction (it commits or rolls back with the change).

    The head row is locked for update, so concurrent appenders are serialised and `seq` stays
    gapless: a rolled-back transaction takes its head update with it.
    """
    head = session.exec(select(LineageHead).where(LineageHead.id == 1).with_for_update()).one()
    seq = head.seq + 1
    record_id = str(uuid.uuid4())
    payload = {
        "schema": SCHEMA,
        "seq": seq,
        "record_id": record_id,
        "prev": head.head_hash,
        "time": now.isoformat(timespec="microseconds"),
        "actor": actor.as_dict(),
        "action": action,
        "entity": {"type": entity_type, "id": entity_id},
        "dataset": dataset_id,
        "region": region,
        "inputs": inputs or {},
        "outputs": outputs or {},
        "parameters": parameters or {},
    }
    body = canonical_json(payload)
    digest = chain_hash(head.head_hash, body)
    record = LineageRecord(
        seq=seq,
        record_id=record_id,
        action=action,
        entity_type=entity_type,
        entity_id=entity_id,
        dataset_id=dataset_id,
        payload=body.decode(),
        prev_hash=head.head_hash,
        record_hash=digest,
        created_at=now,
    )
    head.seq, head.head_hash = seq, digest
    session.add(record)
    session.add(head)
    session.flush()
    return record


def verify_chain(session: Session, *, batch: int = 5000) -> int:
    """Recompute every hash from genesis; raise IntegrityFailure at the first break.

    The head is read first, and records are walked up to it: writers appending meanwhile (a
    live ledger) cannot make a consistent chain look broken. Returns the records verified.
    """
    head = session.exec(select(LineageHead).where(LineageHead.id == 1)).one()
    head_seq, head_hash = head.seq, head.head_hash
    prev, expected_seq, last = GENESIS_HASH, 1, 0
    while True:
        rows = session.exec(
            select(LineageRecord)
            .where(col(LineageRecord.seq) > last, col(LineageRecord.seq) <= head_seq)
            .order_by(col(LineageRecord.seq))
            .limit(batch)
        ).all()
        if not rows:
            break
        for row in rows:
            _verify_record(row, prev=prev, expected_seq=expected_seq)
            prev, expected_seq, last = row.record_hash, expected_seq + 1, row.seq
    if head_seq != last or head_hash != prev:
        raise IntegrityFailure("chain head does not match the last record", seq=last)
    return last


def _verify_record(row: LineageRecord, *, prev: str, expected_seq: int) -> None:
    if row.seq != expected_seq:
        raise IntegrityFailure("gap in lineage sequence", expected=expected_seq, found=row.seq)
    if row.prev_hash != prev:
        raise IntegrityFailure("record does not link to its predecessor", seq=row.seq)
    if chain_hash(prev, row.payload.encode()) != row.record_hash:
        raise IntegrityFailure("record hash does not match its content", seq=row.seq)
    payload_seq = _payload_field(row, "seq")
    if payload_seq != row.seq or _payload_field(row, "prev") != prev:
        raise IntegrityFailure("record columns disagree with the signed payload", seq=row.seq)


def _payload_field(row: LineageRecord, name: str) -> Any:
    return json.loads(row.payload)[name]
