"""ingested objects: what an object-storage import already took (resumable `ingest s3://`)

Revision ID: 0018_ingested_objects
Revises: 0017_job_published_at
"""

import sqlalchemy as sa
from alembic import op

revision = "0018_ingested_objects"
down_revision = "0017_job_published_at"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ingestedobject",
        sa.Column("dataset_id", sa.String(length=36), sa.ForeignKey("dataset.id"), nullable=False),
        sa.Column("source_digest", sa.String(length=64), nullable=False),
        sa.Column("asset_id", sa.String(length=36), sa.ForeignKey("asset.id"), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("dataset_id", "source_digest"),
    )
    op.create_index("ix_ingestedobject_asset_id", "ingestedobject", ["asset_id"])


def downgrade() -> None:
    op.drop_index("ix_ingestedobject_asset_id", table_name="ingestedobject")
    op.drop_table("ingestedobject")
