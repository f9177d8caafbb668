from __future__ import annotations

import threading

import pytest
from sqlalchemy import text
from sqlmodel import Session, select

from gateway.core.db import transaction
from gateway.core.errors import IntegrityFailure
from gateway.core.models import LineageRecord
from gateway.lineage import Actor, append, verify_chain
from gateway.lineage.format.canonical import FloatInPayload, canonical_json

pytestmark = pytest.mark.db
ACTOR = Actor("system", "test")


def _append(session: Session, ctx, n: int = 1) -> None:
    for i in range(n):
        append(
            session,
            action="test.event",
            entity_type="dataset",
            entity_id=f"e{i}",
            actor=ACTOR,
            now=ctx.clock(),
            region="eu-de",
            parameters={"i": i},
        )


def test_chain_verifies_and_detects_tampering(ctx) -> None:
    with transaction(ctx.engine) as s:
        _append(s, ctx, 5)
    with transaction(ctx.engine) as s:
        assert verify_chain(s) == 5
    with ctx.engine.begin() as conn:
        conn.execute(
            text("UPDATE lineagerecord SET payload = replace(payload, :a, :b) WHERE seq = 3"),
            {"a": '"i":2', "b": '"i":9'},
        )
    with transaction(ctx.engine) as s, pytest.raises(IntegrityFailure, match="hash"):
        verify_chain(s)


def test_deleted_record_is_a_gap(ctx) -> None:
    with transaction(ctx.engine) as s:
        _append(s, ctx, 3)
    with ctx.engine.begin() as conn:
        conn.execute(text("DELETE FROM lineagerecord WHERE seq = 2"))
    with transaction(ctx.engine) as s, pytest.raises(IntegrityFailure, match="gap"):
        verify_chain(s)


def test_rolled_back_change_leaves_no_record_and_no_gap(ctx) -> None:
    with pytest.raises(RuntimeError), transaction(ctx.engine) as s:
        _append(s, ctx, 1)
        raise RuntimeError("the state change failed")
    with transaction(ctx.engine) as s:
        _append(s, ctx, 1)
    with transaction(ctx.engine) as s:
        assert verify_chain(s) == 1
        assert [r.seq for r in s.exec(select(LineageRecord))] == [1]


def test_floats_are_refused_in_payloads() -> None:
    with pytest.raises(FloatInPayload, match=r"\$\.score"):
        canonical_json({"score": 0.5})
    assert canonical_json({"b": 1, "a": "x"}) == b'{"a":"x","b":1}'


def test_concurrent_writers_get_one_gapless_order(ctx) -> None:
    errors: list[BaseException] = []

    def writer() -> None:
        try:
            for _ in range(10):
                with transaction(ctx.engine) as s:
                    _append(s, ctx, 1)
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=writer) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors
    with transaction(ctx.engine) as s:
        assert verify_chain(s) == 40


def test_email_addresses_are_refused_in_records(ctx) -> None:
    from gateway.lineage.ledger import DirectIdentifierInLineage

    with pytest.raises(DirectIdentifierInLineage), transaction(ctx.engine) as s:
        append(
            s,
            action="annotation.received",
            entity_type="asset",
            entity_id="a1",
            actor=Actor("annotator", "alice@example.org"),
            now=ctx.clock(),
            region="eu-de",
        )
    with transaction(ctx.engine) as s:
        assert verify_chain(s) == 0
