"""lineage outbox, Merkle frontier, signing keys, signed checkpoints

Revision ID: 0002_lineage
Revises: 0001
"""
from alembic import op
import sqlalchemy as sa


revision = '0002_lineage'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('lineageoutbox',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('record_id', sa.String(length=36), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('record_id'),
    )
    op.create_table('lineagetree',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('size', sa.BigInteger(), nullable=False),
    sa.Column('frontier', sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    )
    op.create_table('lineagesigningkey',
    sa.Column('key_id', sa.String(length=64), nullable=False),
    sa.Column('public_key', sa.LargeBinary(), nullable=False),
    sa.Column('fingerprint', sa.String(length=64), nullable=False),
    sa.Column('master_key_id', sa.String(length=64), nullable=False),
    sa.Column('wrapped', sa.LargeBinary(), nullable=True),
    sa.Column('previous_key_id', sa.String(length=64), nullable=True),
    sa.Column('handover', sa.Text(), nullable=True),
    sa.Column('handover_old_signature', sa.String(length=128), nullable=True),
    sa.Column('handover_new_signature', sa.String(length=128), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('retired_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('key_id'),
    sa.UniqueConstraint('fingerprint'),
    )
    op.create_table('lineagecheckpoint',
    sa.Column('tree_size', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('root_hash', sa.String(length=64), nullable=False),
    sa.Column('chain_head', sa.String(length=64), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('key_id', sa.String(length=64), nullable=False),
    sa.Column('signature', sa.String(length=128), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['key_id'], ['lineagesigningkey.key_id']),
    sa.PrimaryKeyConstraint('tree_size'),
    )


def downgrade() -> None:
    op.drop_table('lineagecheckpoint')
    op.drop_table('lineagesigningkey')
    op.drop_table('lineagetree')
    op.drop_table('lineageoutbox')
