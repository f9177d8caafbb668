"""Migration 0011: assets left in the old `original_deleted` state go back to the state they
had (from their lineage record), and keep the deletion time in `original_deleted_at`."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from alembic import command
from sqlalchemy import text

from gateway.core.db import alembic_config, make_engine

pytestmark = pytest.mark.db
AT = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def _asset(conn, asset_id: str, state: str) -> None:
    conn.execute(
        text(
            "INSERT INTO asset (id, dataset_id, state, content_digest, byte_size, reasons, "
            "created_at, updated_at) VALUES (:id, 'd1', :state, :digest, 1, '[]', :t, :t)"
        ),
        {"id": asset_id, "state": state, "digest": asset_id * 8, "t": datetime(2026, 1, 1)},
    )


def _record(conn, seq: int, asset_id: str, came_from: str) -> None:
    payload = {"action": "asset.original_deleted", "parameters": {"from": came_from}}
    conn.execute(
        text(
            "INSERT INTO lineagerecord (seq, record_id, action, entity_type, entity_id, "
            "dataset_id, payload, prev_hash, record_hash, created_at) VALUES (:seq, :rid, "
            "'asset.original_deleted', 'asset', :id, 'd1', :payload, :prev, :hash, :at)"
        ),
        {
            "seq": seq,
            "rid": f"r{seq}",
            "id": asset_id,
            "payload": json.dumps(payload),
            "prev": f"{seq - 1:064x}",
            "hash": f"{seq:064x}",
            "at": AT,
        },
    )


def test_original_deleted_state_becomes_a_field(database_url: str) -> None:
    engine = make_engine(database_url)
    cfg = alembic_config(engine)
    command.upgrade(cfg, "0010_merge_branches")
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO dataset (id, name, purpose, controller, legal_basis, "
                "data_subject_categories, personal_data_categories, ontology, created_at) "
                "VALUES ('d1', 'd', 'p', 'c', 'consent', '[]', '[]', '{}', :t)"
            ),
            {"t": AT},
        )
        _asset(conn, "a-rel", "original_deleted")
        _asset(conn, "a-qua", "original_deleted")
        _asset(conn, "a-unk", "original_deleted")  # no record: held back, the safe direction
        _asset(conn, "a-live", "released")
        _record(conn, 1, "a-rel", "released")
        _record(conn, 2, "a-qua", "quarantined")
    command.upgrade(cfg, "0011_asset_original_deleted_at")
    with engine.connect() as conn:
        rows = conn.execute(
            text("SELECT id, state, original_deleted_at FROM asset ORDER BY id")
        ).all()
    got = {i: (s, d is not None) for i, s, d in rows}
    assert got == {
        "a-live": ("released", False),
        "a-qua": ("quarantined", True),
        "a-rel": ("released", True),
        "a-unk": ("quarantined", True),
    }
    deleted_at = {i: d for i, _, d in rows}["a-rel"]
    assert str(deleted_at).startswith("2026-03-01 12:00")  # the record's time, not now
    command.downgrade(cfg, "0010_merge_branches")
    with engine.connect() as conn:
        states = dict(conn.execute(text("SELECT id, state FROM asset")).all())
    assert states == {
        "a-live": "released",
        "a-qua": "original_deleted",
        "a-rel": "original_deleted",
        "a-unk": "original_deleted",
    }
    engine.dispose()
