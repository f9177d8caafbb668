"""labelstudio: the redacted SHA-256 each synced task's frozen image URL is signed for;
a destination's image delivery (signed URLs or Label Studio local files)

Revision ID: 0009_labelstudio_task_digest
Revises: 0005_labelstudio
"""

import sqlalchemy as sa
from alembic import op

revision = "0009_labelstudio_task_digest"
down_revision = "0005_labelstudio"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("assetsync") as batch:
        batch.add_column(sa.Column("task_sha256", sa.String(length=64), nullable=True))
    with op.batch_alter_table("destination") as batch:
        batch.add_column(
            sa.Column(
                "image_delivery", sa.String(length=16), nullable=False, server_default="signed-url"
            )
        )
        batch.add_column(sa.Column("local_files_root", sa.String(length=500), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("destination") as batch:
        batch.drop_column("local_files_root")
        batch.drop_column("image_delivery")
    with op.batch_alter_table("assetsync") as batch:
        batch.drop_column("task_sha256")
