"""lineage: each signed checkpoint keeps the Merkle frontier at its size (checked against the
signed root when read), so verification can continue from a trusted checkpoint instead of
re-reading every record since genesis

Revision ID: 0014_lineage_checkpoint_frontier
Revises: 0012_annotation_failures
"""

import sqlalchemy as sa
from alembic import op

revision = "0014_lineage_checkpoint_frontier"
down_revision = "0012_annotation_failures"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("lineagecheckpoint") as batch:
        batch.add_column(sa.Column("frontier", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("lineagecheckpoint") as batch:
        batch.drop_column("frontier")
