"""review candidates: a leak-check quarantine's masked image, sealed, kept for review only

Revision ID: 0023_review_candidates
Revises: 0022_sync_jobs
"""

import sqlalchemy as sa
from alembic import op

revision = "0023_review_candidates"
down_revision = "0022_sync_jobs"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "review_candidate",
        sa.Column(
            "asset_id", sa.String(length=36), sa.ForeignKey("asset.id"), primary_key=True
        ),
        sa.Column("blob", sa.String(length=500), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("key_version", sa.Integer(), nullable=False),
        sa.Column("leak_hits", sa.JSON(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("review_candidate")
