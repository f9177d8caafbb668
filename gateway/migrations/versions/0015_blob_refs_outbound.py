"""blobs: indexes on the blob columns (a blob goes only once no other asset names it);
destinations: the admin's per-destination opt-in to local addresses (outbound allow-list)

Revision ID: 0015_blob_refs_outbound
Revises: 0014_lineage_checkpoint_frontier
"""

import sqlalchemy as sa
from alembic import op

revision = "0015_blob_refs_outbound"
down_revision = "0014_lineage_checkpoint_frontier"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("asset") as batch:
        batch.create_index("ix_asset_original_blob", ["original_blob"])
        batch.create_index("ix_asset_redacted_blob", ["redacted_blob"])
    with op.batch_alter_table("destination") as batch:
        batch.add_column(
            sa.Column(
                "allow_local_addresses", sa.Boolean(), nullable=False, server_default=sa.false()
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("destination") as batch:
        batch.drop_column("allow_local_addresses")
    with op.batch_alter_table("asset") as batch:
        batch.drop_index("ix_asset_redacted_blob")
        batch.drop_index("ix_asset_original_blob")
