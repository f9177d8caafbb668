"""jobs: when a job's wake-up was last handed to the broker (the outbox relay's mark)

Revision ID: 0017_job_published_at
Revises: 0013_api_key_seal
"""

import sqlalchemy as sa
from alembic import op

revision = "0017_job_published_at"
down_revision = "0013_api_key_seal"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("job") as batch:
        batch.add_column(sa.Column("published_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("job") as batch:
        batch.drop_column("published_at")
