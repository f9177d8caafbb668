"""Append lineage records inside the caller's transaction; one sequencer gives them their order.

Writers never contend for the chain head while they work: `append` keeps the record with the
caller's transaction, so it commits or rolls back with the change it describes (savepoints
included). Only the holder of the head row lock assigns `seq` and `prev`, so the order is
total, gapless and fork-free however many processes write. Just before COMMIT the transaction
tries the lock without waiting: got it (always on SQLite, whose writers are serialised
anyway), its records commit already chained; otherwise they commit into an outbox, which a
drain chains right after COMMIT (on a fresh connection, shared by the process's threads) and
before any read that must be complete (verify, export, checkpoint). A crash between COMMIT and
the drain leaves them safe in the outbox for the next drain.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import uuid
import weakref
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, Table, delete, event, update
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session as OrmSession
from sqlalchemy.orm import SessionTransaction
from sqlmodel import Session, select

from gateway.core.errors import IntegrityFailure, InvalidRequest
from gateway.core.models import LineageHead, LineageRecord
from gateway.lineage.format.canonical import GENESIS_HASH, canonical_json, chain_hash
from gateway.lineage.format.merkle import Frontier, leaf_hash
from gateway.lineage.format.records import Actor as Actor
from gateway.lineage.format.records import RecordBody, with_position
from gateway.lineage.tables import LineageOutbox, LineageTree
from gateway.lineage.walk import Position, walk

log = logging.getLogger(__name__)
_PENDING = "lpg.lineage.pending"
_BUFFER = "lpg.lineage.buffer"
_RECORDS: Table = LineageRecord.__table__  # type: ignore[attr-defined]
_HEAD: Table = LineageHead.__table__  # type: ignore[attr-defined]
_TREE: Table = LineageTree.__table__  # type: ignore[attr-defined]
_OUTBOX: Table = LineageOutbox.__table__  # type: ignore[attr-defined]
DRAIN_BATCH = 5000


_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")


class DirectIdentifierInLineage(InvalidRequest):
    """Lineage holds pseudonyms and digests only; an e-mail address is refused outright."""

    code = "direct-identifier-in-lineage"


SYSTEM = Actor("system", "gateway")


@dataclass(frozen=True, slots=True)
class PendingRecord:
    """A record accepted in the caller's transaction; the sequencer gives it `seq` and `prev`."""

    record_id: str
    body: dict[str, Any]


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
) -> PendingRecord:
    """Append one record in the caller's transaction (it commits or rolls back with the change).

    Payloads must be integers/strings (floats raise FloatInPayload here, before anything is
    written) and hold no direct identifiers: originals only as keyed digests.
    """
    record_id = str(uuid.uuid4())
    body = RecordBody(
        record_id=record_id,
        time=now,
        actor=actor,
        action=action,
        entity_type=entity_type,
        entity_id=entity_id,
        region=region,
        dataset_id=dataset_id,
        inputs=inputs or {},
        outputs=outputs or {},
        parameters=parameters or {},
    ).as_dict()
    text = canonical_json(body).decode()
    if _EMAIL.search(text):
        raise DirectIdentifierInLineage(
            "a lineage record may not hold an e-mail address: record a pseudonym or a keyed "
            "digest instead",
            action=action,
        )
    session.connection()  # begins the caller's transaction if it has not begun yet
    txn = session.get_nested_transaction() or session.get_transaction()
    row = {"record_id": record_id, "body": text, "created_at": now}
    session.info.setdefault(_BUFFER, []).append((txn, row))
    return PendingRecord(record_id, body)


@event.listens_for(OrmSession, "before_commit")
def _write_records(session: OrmSession) -> None:
    """Just before COMMIT, the records appended in this transaction join the chain: directly,
    if this transaction can take the head lock without waiting (always on SQLite, whose writers
    are serialised anyway; on PostgreSQL when no other sequencer holds it), so they commit
    chained; otherwise into the outbox in one statement, for the drain after COMMIT."""
    buffered = session.info.get(_BUFFER)
    if not buffered or session.in_nested_transaction():
        return  # a savepoint's records wait for the outermost COMMIT
    rows = [row for _, row in buffered]
    head = try_lock_head(session)  # type: ignore[arg-type]
    if head is None:
        _insert_many(session, _OUTBOX, rows)
        session.info[_PENDING] = True
    else:
        _sequence(session, head, rows)  # type: ignore[arg-type]
    buffered.clear()


@event.listens_for(OrmSession, "after_soft_rollback")
def _drop_rolled_back(session: OrmSession, previous_transaction: SessionTransaction) -> None:
    """A rolled-back transaction or savepoint takes the records appended inside it along."""
    if previous_transaction.parent is None:
        session.info.pop(_BUFFER, None)
        session.info.pop(_PENDING, None)
        return
    buffered = session.info.get(_BUFFER) or []
    buffered[:] = [(t, r) for t, r in buffered if not _within(t, previous_transaction)]


def _within(txn: SessionTransaction | None, outer: SessionTransaction) -> bool:
    while txn is not None:
        if txn is outer:
            return True
        txn = txn.parent
    return False


@event.listens_for(OrmSession, "after_transaction_end")
def _forget_buffer(session: OrmSession, transaction: SessionTransaction) -> None:
    if transaction.parent is None:  # the session's transaction is over, whatever happened
        session.info.pop(_BUFFER, None)


def read_head(session: Session, *, lock: bool) -> tuple[int, str]:
    """The chain head (seq, hash), read with Core so no stale ORM copy can answer; `lock` takes
    the head row lock (SELECT ... FOR UPDATE) that makes its holder the one sequencer."""
    stmt = select(_HEAD.c.seq, _HEAD.c.head_hash).where(_HEAD.c.id == 1)
    row = session.connection().execute(stmt.with_for_update() if lock else stmt).one()
    return int(row.seq), str(row.head_hash)


def try_lock_head(session: Session) -> tuple[int, str] | None:
    """The head, locked, or None when another transaction holds its lock (SKIP LOCKED)."""
    stmt = select(_HEAD.c.seq, _HEAD.c.head_hash).where(_HEAD.c.id == 1)
    row = session.connection().execute(stmt.with_for_update(skip_locked=True)).first()
    return None if row is None else (int(row.seq), str(row.head_hash))


def sequence_pending(session: Session, *, limit: int = DRAIN_BATCH) -> int:
    """Move up to `limit` committed outbox rows into the chain; returns how many were moved.

    Holds the head row lock for the rest of the caller's transaction: the one sequencer.
    """
    return _sequence(session, read_head(session, lock=True), [], limit=limit)


def _sequence(
    session: Session,
    head: tuple[int, str],
    own: list[dict[str, Any]],
    *,
    limit: int = DRAIN_BATCH,
) -> int:
    """With the head lock held: chain the outbox's oldest rows, then `own` (this transaction's
    records); returns how many records were chained."""
    conn = session.connection()
    pending = conn.execute(
        select(_OUTBOX.c.id, _OUTBOX.c.body, _OUTBOX.c.created_at)
        .order_by(_OUTBOX.c.id)
        .limit(limit)
    ).all()
    items = [(r.body, r.created_at) for r in pending] + [(r["body"], r["created_at"]) for r in own]
    if not items:
        return 0
    (seq, prev), (frontier, stored) = head, current_frontier(session, head[0])
    new = []
    for text, created in items:
        body = json.loads(text)
        seq += 1
        payload = with_position(text, record_id=body["record_id"], seq=seq, prev=prev)
        digest = chain_hash(prev, payload)
        frontier.append(leaf_hash(bytes.fromhex(digest)))
        new.append(_record_row(body, seq, prev, digest, payload, created))
        prev = digest
    _insert_many(session, _RECORDS, new)
    if pending:
        conn.execute(delete(_OUTBOX).where(_OUTBOX.c.id.in_([r.id for r in pending])))
    conn.execute(update(_HEAD).where(_HEAD.c.id == 1).values(seq=seq, head_hash=prev))
    nodes = json.dumps([n.hex() for n in frontier.nodes])
    if stored:
        conn.execute(update(_TREE).where(_TREE.c.id == 1).values(size=seq, frontier=nodes))
    else:
        conn.execute(_TREE.insert().values(id=1, size=seq, frontier=nodes))
    return len(new)


def _insert_many(session: OrmSession, table: Table, rows: list[dict[str, Any]]) -> None:
    """One executemany (psycopg pipelines it; the compiled statement is cached)."""
    session.connection().execute(table.insert(), rows)


def _record_row(
    body: dict[str, Any], seq: int, prev: str, digest: str, payload: bytes, created: datetime
) -> dict[str, Any]:
    return {
        "seq": seq,
        "record_id": body["record_id"],
        "action": body["action"],
        "entity_type": body["entity"]["type"],
        "entity_id": body["entity"]["id"],
        "dataset_id": body["dataset"],
        "payload": payload.decode(),
        "prev_hash": prev,
        "record_hash": digest,
        "created_at": created,
    }


def current_frontier(session: Session, head_seq: int) -> tuple[Frontier, bool]:
    """The Merkle frontier of records 1..head_seq, and whether its row exists; rebuilt from the
    records if the row is missing or behind the head (e.g. a ledger from before migration)."""
    conn = session.connection()
    row = conn.execute(select(_TREE.c.size, _TREE.c.frontier).where(_TREE.c.id == 1)).first()
    if row is not None and row.size == head_seq:
        return Frontier(row.size, [bytes.fromhex(h) for h in json.loads(row.frontier)]), True
    frontier = Frontier()
    hashes = conn.execute(
        select(_RECORDS.c.record_hash).where(_RECORDS.c.seq <= head_seq).order_by(_RECORDS.c.seq)
    ).scalars()
    for digest in hashes:
        frontier.append(leaf_hash(bytes.fromhex(digest)))
    if frontier.size != head_seq:
        raise IntegrityFailure(
            "chain records and head disagree", head=head_seq, found=frontier.size
        )
    return frontier, row is not None


def drain(engine: Engine) -> int:
    """Sequence everything in the outbox, in short transactions; returns records moved."""
    total = 0
    while True:
        with Session(engine) as session:
            moved = sequence_pending(session)
            session.commit()
        total += moved
        if moved < DRAIN_BATCH:
            return total


class _SharedDrain:
    """Threads of one process committing at once share drains instead of queueing for the head
    lock one by one: each waits until a drain that began after its commit has finished, and
    at most one thread per engine runs a drain at a time (other processes still meet at the
    head row lock)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.cond = threading.Condition()
        self.requested = self.completed = 0
        self.running = False

    def after_commit(self) -> None:
        with self.cond:
            self.requested += 1
            ticket = self.requested
            while self.completed < ticket:
                if not self.running:
                    self.running = True
                    break
                self.cond.wait()
            else:
                return  # someone else's drain took this commit's records along
        try:
            self._run()
        finally:
            with self.cond:
                self.running = False
                self.cond.notify_all()

    def _run(self) -> None:
        while True:
            with self.cond:
                target = self.requested
            drain(self.engine)
            with self.cond:
                self.completed = max(self.completed, target)
                self.cond.notify_all()
                if self.requested == target:
                    return


_SHARED: weakref.WeakKeyDictionary[Engine, _SharedDrain] = weakref.WeakKeyDictionary()
_SHARED_LOCK = threading.Lock()


def _shared_drain(engine: Engine) -> _SharedDrain:
    with _SHARED_LOCK:
        shared = _SHARED.get(engine)
        if shared is None:
            shared = _SHARED[engine] = _SharedDrain(engine)
        return shared


@event.listens_for(OrmSession, "after_commit")
def _drain_after_commit(session: OrmSession) -> None:
    if not session.info.pop(_PENDING, False):
        return
    bind = session.get_bind()
    engine = bind if isinstance(bind, Engine) else bind.engine
    try:
        _shared_drain(engine).after_commit()
    except OperationalError as exc:  # the change is committed; its record waits in the outbox
        log.warning("lineage records stay in the outbox until the next drain: %s", exc)


def verify_chain(session: Session, *, batch: int = 20_000) -> int:
    """Recompute every hash from genesis and compare the columns reports read with the hashed
    payload; raise IntegrityFailure at the first break. This is the chain's own consistency:
    what anchors it outside the database is `gateway.lineage.live`.

    The head is read first, and records are walked up to it: writers appending meanwhile (a
    live ledger) cannot make a consistent chain look broken. Returns the records verified.
    """
    head_seq, head_hash = read_head(session, lock=False)
    end = walk(
        session,
        start=Position(0, GENESIS_HASH, Frontier()),
        end_seq=head_seq,
        heads=(),
        batch=batch,
    )
    if end.head != head_hash:
        raise IntegrityFailure("chain head does not match the last record", seq=head_seq)
    return head_seq
