"""pseudonymisation: dataset secrets, gateway secrets, re-identification vault

Revision ID: 0003_pseudonymisation
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0003_pseudonymisation"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "dataset_secret",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("dataset_id", sa.String(length=36), sa.ForeignKey("dataset.id"), nullable=False),
        sa.Column("purpose", sa.String(length=32), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("master_key_id", sa.String(length=64), nullable=False),
        sa.Column("wrapped", sa.LargeBinary(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("shredded_at", sa.DateTime(timezone=True), nullable=True),
        sa.UniqueConstraint("dataset_id", "purpose", "version"),
    )
    op.create_index("ix_dataset_secret_dataset_id", "dataset_secret", ["dataset_id"])
    op.create_table(
        "gateway_secret",
        sa.Column("purpose", sa.String(length=32), primary_key=True),
        sa.Column("master_key_id", sa.String(length=64), nullable=False),
        sa.Column("wrapped", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "vault_entry",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("dataset_id", sa.String(length=36), sa.ForeignKey("dataset.id"), nullable=False),
        sa.Column("field", sa.String(length=32), nullable=False),
        sa.Column("pseudonym", sa.String(length=64), nullable=False),
        sa.Column("key_version", sa.Integer(), nullable=False),
        sa.Column("sealed", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("dataset_id", "pseudonym"),
    )
    op.create_index("ix_vault_entry_dataset_id", "vault_entry", ["dataset_id"])


def downgrade() -> None:
    op.drop_index("ix_vault_entry_dataset_id", table_name="vault_entry")
    op.drop_table("vault_entry")
    op.drop_table("gateway_secret")
    op.drop_index("ix_dataset_secret_dataset_id", table_name="dataset_secret")
    op.drop_table("dataset_secret")
