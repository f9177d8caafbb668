"""jobs: attempt limit, heartbeat lease, retry time, failure reason, deferrals, queue, payload

Revision ID: 0016_job_leases
Revises: 0015_blob_refs_outbound
"""

import sqlalchemy as sa
from alembic import op

revision = "0016_job_leases"
down_revision = "0015_blob_refs_outbound"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("job") as batch:
        batch.add_column(
            sa.Column("queue", sa.String(length=64), nullable=False, server_default="default")
        )
        batch.add_column(sa.Column("payload", sa.JSON(), nullable=True))
        batch.add_column(
            sa.Column("max_attempts", sa.Integer(), nullable=False, server_default="5")
        )
        batch.add_column(sa.Column("run_after", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(
            sa.Column("lease_expires_at", sa.DateTime(timezone=True), nullable=True)
        )
        batch.add_column(sa.Column("error_code", sa.String(length=64), nullable=True))
        batch.add_column(
            sa.Column("deferrals", sa.Integer(), nullable=False, server_default="0")
        )
        batch.add_column(sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True))
        batch.create_index("ix_job_queue_state", ["queue", "state"])


def downgrade() -> None:
    with op.batch_alter_table("job") as batch:
        batch.drop_index("ix_job_queue_state")
        for name in (
            "finished_at",
            "deferrals",
            "error_code",
            "lease_expires_at",
            "run_after",
            "max_attempts",
            "payload",
            "queue",
        ):
            batch.drop_column(name)
