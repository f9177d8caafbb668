"""api keys: a keyed MAC over each key's role, scope, expiry and revocation

Keys created before this revision have no seal and stop authenticating until an operator
seals them (`privacy-gateway api-keys seal`) or replaces them: the database alone cannot
vouch for rows someone may have edited.

Revision ID: 0013_api_key_seal
Revises: 0016_job_leases
"""

import sqlalchemy as sa
from alembic import op

revision = "0013_api_key_seal"
down_revision = "0016_job_leases"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("apikey") as batch:
        batch.add_column(sa.Column("seal", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("apikey") as batch:
        batch.drop_column("seal")
