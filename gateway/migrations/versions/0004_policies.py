"""policies: legal holds and the erasure register

Revision ID: 0004_policies
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0004_policies"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "legal_hold",
        sa.Column("id", sa.String(length=36), primary_key=True),
        sa.Column("dataset_id", sa.String(length=36), sa.ForeignKey("dataset.id"), nullable=False),
        sa.Column("asset_id", sa.String(length=36), sa.ForeignKey("asset.id"), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("placed_by", sa.String(length=100), nullable=False),
        sa.Column("placed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("released_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_legal_hold_dataset_id", "legal_hold", ["dataset_id"])
    op.create_table(
        "erasure_request",
        sa.Column("id", sa.String(length=36), primary_key=True),
        sa.Column("dataset_id", sa.String(length=36), sa.ForeignKey("dataset.id"), nullable=False),
        sa.Column("subject_pseudonym", sa.String(length=64), nullable=True),
        sa.Column("asset_id", sa.String(length=36), nullable=True),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("assets_erased", sa.JSON(), nullable=True),
        sa.Column("recipients", sa.JSON(), nullable=True),
        sa.Column("requested_by", sa.String(length=100), nullable=False),
    )
    op.create_index("ix_erasure_request_dataset_id", "erasure_request", ["dataset_id"])
    op.create_index("ix_erasure_request_state", "erasure_request", ["state"])
    op.create_index("ix_erasure_request_subject_pseudonym", "erasure_request", ["subject_pseudonym"])


    _immutable_policy_versions()


_MESSAGE = "activated policy versions are immutable; activate a new version"


def _immutable_policy_versions() -> None:
    """Defence in depth under the ORM hook: the database itself refuses to change or delete
    an activated policy version (raw SQL included)."""
    if op.get_bind().dialect.name == "sqlite":
        for event in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER policyversion_immutable_{event.lower()} BEFORE {event} "
                "ON policyversion FOR EACH ROW WHEN OLD.activated_at IS NOT NULL "
                f"BEGIN SELECT RAISE(ABORT, '{_MESSAGE}'); END"
            )
        return
    op.execute(
        "CREATE FUNCTION policyversion_immutable() RETURNS trigger AS $$ BEGIN "
        f"IF OLD.activated_at IS NOT NULL THEN RAISE EXCEPTION '{_MESSAGE}'; END IF; "
        "IF TG_OP = 'DELETE' THEN RETURN OLD; END IF; RETURN NEW; END $$ LANGUAGE plpgsql"
    )
    op.execute(
        "CREATE TRIGGER policyversion_immutable BEFORE UPDATE OR DELETE ON policyversion "
        "FOR EACH ROW EXECUTE FUNCTION policyversion_immutable()"
    )


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute("DROP TRIGGER IF EXISTS policyversion_immutable_update")
        op.execute("DROP TRIGGER IF EXISTS policyversion_immutable_delete")
    else:
        op.execute("DROP TRIGGER IF EXISTS policyversion_immutable ON policyversion")
        op.execute("DROP FUNCTION IF EXISTS policyversion_immutable()")
    op.drop_table("erasure_request")
    op.drop_table("legal_hold")
