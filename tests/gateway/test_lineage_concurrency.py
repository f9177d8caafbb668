"""One total order under concurrency: many writers, separate processes' worth of sessions, no
gaps, forks or duplicates; the Merkle frontier kept by the sequencer matches the records."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from sqlalchemy import func
from sqlmodel import col, select

from gateway.core.db import transaction
from gateway.core.models import LineageRecord
from gateway.lineage import Actor, append, verify_chain
from gateway.lineage.checkpoints import create_checkpoint, leaf_hashes
from gateway.lineage.format.merkle import Tree
from gateway.lineage.ledger import drain
from gateway.lineage.tables import LineageOutbox

pytestmark = pytest.mark.db


def _write(ctx: Any, writer: int, records: int, per_tx: int, errors: list[BaseException]) -> None:
    try:
        for start in range(0, records, per_tx):
            with transaction(ctx.engine) as s:
                for i in range(start, min(start + per_tx, records)):
                    append(
                        s,
                        action="test.concurrent",
                        entity_type="asset",
                        entity_id=f"w{writer}-{i}",
                        actor=Actor("system", f"writer-{writer}"),
                        now=ctx.clock(),
                        region="eu-de",
                        parameters={"writer": writer, "i": i},
                    )
    except BaseException as exc:  # surfaced by the test
        errors.append(exc)


def _run(ctx: Any, writers: int, records: int, per_tx: int) -> None:
    errors: list[BaseException] = []
    threads = [
        threading.Thread(target=_write, args=(ctx, w, records, per_tx, errors))
        for w in range(writers)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(600)
    assert not errors, errors[:3]
    drain(ctx.engine)
    total = writers * records
    with transaction(ctx.engine) as s:
        assert verify_chain(s) == total  # gapless 1..total, every link intact
        seqs = list(s.exec(select(LineageRecord.seq).order_by(col(LineageRecord.seq))))
        assert seqs == list(range(1, total + 1))
        ids = s.exec(select(func.count(func.distinct(LineageRecord.entity_id)))).one()
        assert ids == total  # every append exactly once: no duplicates, none lost
        assert s.exec(select(func.count()).select_from(LineageOutbox)).one() == 0
        cp = create_checkpoint(ctx, s)
        assert cp.tree_size == total
        assert cp.root_hash == Tree(leaf_hashes(s, total)).root().hex()  # frontier == records
    # per writer, its records keep the order it wrote them in
    with transaction(ctx.engine) as s:
        rows = s.exec(
            select(LineageRecord)
            .where(LineageRecord.action == "test.concurrent")
            .order_by(col(LineageRecord.seq))
        ).all()
        last: dict[str, int] = {}
        for row in rows:
            w, i = row.entity_id.split("-")
            assert int(i) > last.get(w, -1)
            last[w] = int(i)


def test_eight_writers_small_transactions_stay_one_gapless_chain(ctx) -> None:
    _run(ctx, writers=8, records=100, per_tx=3)


@pytest.mark.integration
def test_eight_writers_ten_thousand_records(ctx) -> None:
    _run(ctx, writers=8, records=1250, per_tx=5)


def test_a_crash_between_commit_and_drain_loses_nothing(ctx) -> None:
    """Records committed with their change wait in the outbox; the next drain chains them."""
    from gateway.lineage import ledger

    with transaction(ctx.engine) as s:
        append(
            s,
            action="test.event",
            entity_type="asset",
            entity_id="a",
            actor=Actor("system", "t"),
            now=ctx.clock(),
            region="eu-de",
        )
        # what COMMIT does when another sequencer holds the head: the records go to the
        # outbox; then the process dies before its drain
        ledger._insert_many(s, ledger._OUTBOX, [row for _, row in s.info[ledger._BUFFER]])
        s.info[ledger._BUFFER].clear()
    with transaction(ctx.engine) as s:
        assert s.exec(select(func.count()).select_from(LineageOutbox)).one() == 1
        assert verify_chain(s) == 0
    assert drain(ctx.engine) == 1
    with transaction(ctx.engine) as s:
        assert verify_chain(s) == 1


def _one(session: Any, ctx: Any, entity: str) -> None:
    append(
        session,
        action="test.event",
        entity_type="asset",
        entity_id=entity,
        actor=Actor("system", "t"),
        now=ctx.clock(),
        region="eu-de",
    )


def test_savepoints_keep_or_drop_their_records_with_their_changes(ctx) -> None:
    with transaction(ctx.engine) as s:
        _one(s, ctx, "outer-before")
        with pytest.raises(RuntimeError), s.begin_nested():
            _one(s, ctx, "inside-rolled-back")
            raise RuntimeError("this step failed")
        with s.begin_nested():
            _one(s, ctx, "inside-released")
        _one(s, ctx, "outer-after")
    with pytest.raises(RuntimeError), transaction(ctx.engine) as s:
        _one(s, ctx, "whole-transaction-rolled-back")
        raise RuntimeError("the change failed")
    with transaction(ctx.engine) as s:
        assert verify_chain(s) == 3
        names = list(s.exec(select(LineageRecord.entity_id).order_by(col(LineageRecord.seq))))
    assert names == ["outer-before", "inside-released", "outer-after"]


def test_a_session_closed_without_commit_leaves_nothing_behind(ctx) -> None:
    from sqlmodel import Session

    with Session(ctx.engine) as s:
        _one(s, ctx, "abandoned")
        s.close()
        _one(s, ctx, "kept")
        s.commit()
    with transaction(ctx.engine) as s:
        assert list(s.exec(select(LineageRecord.entity_id))) == ["kept"]
