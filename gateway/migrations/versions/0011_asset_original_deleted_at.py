"""assets: the original's deletion is a field, not a lifecycle state

`original_deleted` was a state, so a released asset whose original retention deleted was no
longer "released" (not synced, not shown). Assets in that state go back to the state they had
before (released or quarantined, from the `parameters.from` of their `asset.original_deleted`
lineage record; quarantined when it cannot be read, the safe direction) and keep the deletion
time in `original_deleted_at`.

Revision ID: 0011_asset_original_deleted_at
Revises: 0010_merge_branches
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0011_asset_original_deleted_at"
down_revision = "0010_merge_branches"
branch_labels = None
depends_on = None

ACTION = "asset.original_deleted"
RESTORABLE = ("released", "quarantined")


def upgrade() -> None:
    with op.batch_alter_table("asset") as batch:
        batch.add_column(sa.Column("original_deleted_at", sa.DateTime(timezone=True), nullable=True))
    conn = op.get_bind()
    stuck = conn.execute(
        sa.text("SELECT id, updated_at FROM asset WHERE state = 'original_deleted'")
    ).all()
    for asset_id, updated_at in stuck:
        before, deleted_at = _deletion_record(conn, asset_id)
        conn.execute(
            sa.text("UPDATE asset SET state = :state, original_deleted_at = :at WHERE id = :id"),
            {
                "state": before if before in RESTORABLE else "quarantined",
                "at": deleted_at or updated_at,
                "id": asset_id,
            },
        )


def _deletion_record(conn: Any, asset_id: str) -> tuple[str | None, datetime | None]:
    """(state before, time) from the newest `asset.original_deleted` record, chained or still
    waiting in the outbox."""
    row = conn.execute(
        sa.text(
            "SELECT payload, created_at FROM lineagerecord "
            "WHERE entity_id = :id AND action = :action ORDER BY seq DESC"
        ),
        {"id": asset_id, "action": ACTION},
    ).first()
    if row is None:
        for body, created_at in conn.execute(
            sa.text("SELECT body, created_at FROM lineageoutbox ORDER BY id DESC")
        ).all():
            doc = json.loads(body)
            if doc.get("action") == ACTION and doc.get("entity", {}).get("id") == asset_id:
                row = (body, created_at)
                break
    if row is None:
        return None, None
    parameters = json.loads(row[0]).get("parameters", {})
    return parameters.get("from"), row[1]


def downgrade() -> None:
    conn = op.get_bind()
    conn.execute(
        sa.text(
            "UPDATE asset SET state = 'original_deleted' "
            "WHERE original_deleted_at IS NOT NULL AND state IN ('released', 'quarantined')"
        )
    )
    with op.batch_alter_table("asset") as batch:
        batch.drop_column("original_deleted_at")
