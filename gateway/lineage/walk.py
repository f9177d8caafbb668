"""The live chain walk: every record's link, hash and columns, and the Merkle root at every
trusted tree head on the way, in one pass over plain rows (no ORM objects).

The columns reports and filters read (`action`, `entity_type`, `entity_id`, `dataset_id`,
`record_id`, `created_at`) are copies of fields of the hashed payload; a copy that disagrees
with the payload is tampering, named with the record's seq and the column.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Table, select
from sqlmodel import Session

from gateway.core.errors import IntegrityFailure
from gateway.core.models import LineageRecord
from gateway.lineage.format.checkpoint import TreeHead
from gateway.lineage.format.merkle import Frontier

_RECORDS: Table = LineageRecord.__table__  # type: ignore[attr-defined]
BATCH = 20_000


class LedgerTampered(IntegrityFailure):
    """The live ledger disagrees with itself or with a signed tree head."""

    code, title = "lineage-tampered", "Lineage ledger does not verify"


@dataclass(slots=True)
class Position:
    """Where a walk starts: after record `seq`, whose hash is `head`, with the Merkle frontier
    of records 1..seq."""

    seq: int
    head: str
    frontier: Frontier


def walk(
    session: Session,
    *,
    start: Position,
    end_seq: int,
    heads: Sequence[TreeHead],
    batch: int = BATCH,
) -> Position:
    """Check records start.seq+1..end_seq; every tree head in (start.seq, end_seq] is checked
    when the walk reaches its size. Returns the position at `end_seq`."""
    due = sorted((h for h in heads if start.seq < h.tree_size <= end_seq), key=_size)
    pending = iter(due)
    nxt = next(pending, None)
    seq, prev, frontier = start.seq, start.head, start.frontier
    prev_raw = bytes.fromhex(prev)
    conn = session.connection()
    cols = _RECORDS.c
    stmt = select(
        cols.seq,
        cols.record_id,
        cols.action,
        cols.entity_type,
        cols.entity_id,
        cols.dataset_id,
        cols.payload,
        cols.prev_hash,
        cols.record_hash,
        cols.created_at,
    ).order_by(cols.seq)
    while seq < end_seq:
        rows = conn.execute(stmt.where(cols.seq > seq, cols.seq <= end_seq).limit(batch)).all()
        if not rows:
            raise LedgerTampered(
                f"record seq {seq + 1} is missing: the chain stops before its head {end_seq}",
                seq=seq + 1,
                problem="missing",
            )
        for row in rows:
            seq += 1
            if row.seq != seq:
                raise LedgerTampered(
                    f"record seq {seq} is missing (gap in lineage sequence: next is {row.seq})",
                    expected=seq,
                    found=row.seq,
                    problem="missing",
                )
            if row.prev_hash != prev:
                raise LedgerTampered(f"record seq {seq} does not link to its predecessor", seq=seq)
            raw = hashlib.sha256(prev_raw + row.payload.encode()).digest()
            digest = raw.hex()
            if digest != row.record_hash:
                raise LedgerTampered(
                    f"record seq {seq}: record hash does not match its content", seq=seq
                )
            _check_columns(row, row.payload, seq=seq, prev=prev)
            frontier.append(hashlib.sha256(b"\x00" + raw).digest())
            prev, prev_raw = digest, raw
            while nxt is not None and nxt.tree_size == seq:
                _check_head(nxt, frontier, prev)
                nxt = next(pending, None)
    return Position(seq, prev, frontier)


def _size(head: TreeHead) -> int:
    return head.tree_size


def _check_head(head: TreeHead, frontier: Frontier, chain_head: str) -> None:
    if frontier.root().hex() != head.root_hash or chain_head != head.chain_head:
        raise LedgerTampered(
            f"records 1..{head.tree_size} do not match the signed checkpoint at that size "
            f"({head.source}): history was rewritten",
            tree_size=head.tree_size,
            source=head.source,
        )


def _check_columns(row: Any, payload: str, *, seq: int, prev: str) -> None:
    """The columns against the payload. The fast path compares the exact canonical fragments
    the columns imply (RFC 8785 puts the top-level keys in a fixed order: action, actor,
    dataset, entity, inputs, outputs, parameters, prev, record_id, region, schema, seq, time);
    anything it cannot confirm is parsed and compared field by field, which raises."""
    if _fragments_match(row, payload, seq=seq, prev=prev):
        return
    _compare_parsed(row, json.loads(payload), seq=seq, prev=prev)


def _quoted(value: str | None) -> str:
    if value is None:
        return "null"
    if value.isascii() and value.isprintable() and '"' not in value and "\\" not in value:
        return f'"{value}"'
    return json.dumps(value, ensure_ascii=False)


def _fragments_match(row: Any, payload: str, *, seq: int, prev: str) -> bool:
    if not payload.startswith(f'{{"action":{_quoted(row.action)},"actor":{{'):
        return False
    entity = (
        f',"dataset":{_quoted(row.dataset_id)},"entity":{{"id":{_quoted(row.entity_id)},'
        f'"type":{_quoted(row.entity_type)}}},"inputs":{{'
    )
    at = payload.find(',"dataset":')
    if at < 0 or not payload.startswith(entity, at):
        return False
    position = f',"prev":"{prev}","record_id":{_quoted(row.record_id)},"region":'
    at_prev = payload.rfind(',"prev":"')
    if at_prev < 0 or not payload.startswith(position, at_prev):
        return False
    created = row.created_at
    if created is None:
        return False
    moment = (
        created.isoformat(timespec="microseconds") + "+00:00"
        if created.tzinfo is None
        else created.astimezone(UTC).isoformat(timespec="microseconds")
    )
    return payload.endswith(f',"seq":{seq},"time":"{moment}"}}')


def _compare_parsed(row: Any, body: Any, *, seq: int, prev: str) -> None:
    if not isinstance(body, dict):
        raise LedgerTampered(f"record seq {seq}: the payload is not a JSON object", seq=seq)
    if body.get("seq") != seq or body.get("prev") != prev:
        raise LedgerTampered(
            f"record seq {seq}: its position disagrees with the hashed payload", seq=seq
        )
    entity = body.get("entity")
    entity = entity if isinstance(entity, dict) else {}
    expected = (
        ("action", row.action, body.get("action")),
        ("record_id", row.record_id, body.get("record_id")),
        ("entity_type", row.entity_type, entity.get("type")),
        ("entity_id", row.entity_id, entity.get("id")),
        ("dataset_id", row.dataset_id, body.get("dataset")),
    )
    for column, stored, hashed in expected:
        if stored != hashed:
            raise LedgerTampered(
                f"record seq {seq}: column {column} says {stored!r} but the hashed payload "
                f"says {hashed!r}",
                seq=seq,
                column=column,
            )
    if not _same_time(row.created_at, body.get("time")):
        raise LedgerTampered(
            f"record seq {seq}: column created_at says {row.created_at} but the hashed "
            f"payload says {body.get('time')}",
            seq=seq,
            column="created_at",
        )


def _same_time(stored: datetime | None, hashed: Any) -> bool:
    """SQLite keeps no time zone (it returns the wall time written); PostgreSQL keeps the
    instant. Either way the payload's time must name the same moment."""
    if stored is None or not isinstance(hashed, str):
        return False
    try:
        moment = datetime.fromisoformat(hashed)
    except ValueError:
        return False
    if stored.tzinfo is None:
        return moment.replace(tzinfo=None) == stored
    return moment.tzinfo is not None and moment == stored
