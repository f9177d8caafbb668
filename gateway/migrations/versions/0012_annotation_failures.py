"""labelstudio: annotation events the gateway could not store or Label Studio did not confirm

Revision ID: 0012_annotation_failures
Revises: 0011_asset_original_deleted_at
"""

import sqlalchemy as sa
from alembic import op

revision = "0012_annotation_failures"
down_revision = "0011_asset_original_deleted_at"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "annotation_failure",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "destination_id", sa.String(length=36), sa.ForeignKey("destination.id"), nullable=False
        ),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("ls_annotation_id", sa.Integer(), nullable=False),
        sa.Column("task_id", sa.Integer(), nullable=True),
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("resolution", sa.String(length=64), nullable=True),
    )
    op.create_index(
        "ix_annotation_failure_destination_id", "annotation_failure", ["destination_id"]
    )
    op.create_index(
        "ix_annotation_failure_ls_annotation_id", "annotation_failure", ["ls_annotation_id"]
    )


def downgrade() -> None:
    op.drop_table("annotation_failure")
