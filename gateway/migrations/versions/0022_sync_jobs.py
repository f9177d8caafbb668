"""jobs: a job need not belong to one asset (a dataset sync is a job of its dataset)

Revision ID: 0022_sync_jobs
Revises: 0019_review
"""

import sqlalchemy as sa
from alembic import op

revision = "0022_sync_jobs"
down_revision = "0019_review"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("job") as batch:
        batch.alter_column("asset_id", existing_type=sa.String(length=36), nullable=True)


def downgrade() -> None:
    op.execute("DELETE FROM job WHERE asset_id IS NULL")
    with op.batch_alter_table("job") as batch:
        batch.alter_column("asset_id", existing_type=sa.String(length=36), nullable=False)
