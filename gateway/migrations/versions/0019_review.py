"""review: items sent to human review and their decisions, review projects, reviewers, samples

Revision ID: 0019_review
Revises: 0018_ingested_objects
"""

import sqlalchemy as sa
from alembic import op

revision = "0019_review"
down_revision = "0018_ingested_objects"
branch_labels = None
depends_on = None


def _ts(name: str, nullable: bool = False) -> sa.Column:  # type: ignore[type-arg]
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "review_item",
        sa.Column("id", sa.String(length=36), primary_key=True),
        sa.Column("dataset_id", sa.String(length=36), sa.ForeignKey("dataset.id"), nullable=False),
        sa.Column("asset_id", sa.String(length=36), sa.ForeignKey("asset.id"), nullable=False),
        sa.Column("reason", sa.String(length=16), nullable=False),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.Column("sample_ref", sa.String(length=36), nullable=True),
        _ts("opened_at"),
        _ts("decided_at", nullable=True),
        sa.Column("decision", sa.String(length=16), nullable=True),
        sa.Column("reviewer", sa.String(length=128), nullable=True),
        sa.Column("findings", sa.JSON(), nullable=True),
        sa.Column("lead_time_seconds", sa.Float(), nullable=True),
        sa.Column(
            "policy_version_id",
            sa.String(length=36),
            sa.ForeignKey("policyversion.id"),
            nullable=True,
        ),
        sa.Column(
            "destination_id", sa.String(length=36), sa.ForeignKey("destination.id"), nullable=True
        ),
        sa.Column("ls_task_id", sa.Integer(), nullable=True),
        sa.Column("ls_annotation_id", sa.Integer(), nullable=True),
        sa.Column("incident_id", sa.String(length=36), nullable=True),
        sa.Column("hold_id", sa.String(length=36), nullable=True),
        sa.Column("original_available", sa.Boolean(), nullable=False),
        sa.Column("details", sa.JSON(), nullable=True),
    )
    op.create_index("ix_review_item_dataset_id", "review_item", ["dataset_id"])
    op.create_index("ix_review_item_asset_id", "review_item", ["asset_id"])
    op.create_index("ix_review_item_reason", "review_item", ["reason"])
    op.create_index("ix_review_item_sample_ref", "review_item", ["sample_ref"])
    op.create_index("ix_review_item_task", "review_item", ["destination_id", "ls_task_id"])
    op.create_table(
        "review_project",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("dataset_id", sa.String(length=36), sa.ForeignKey("dataset.id"), nullable=False),
        sa.Column(
            "destination_id", sa.String(length=36), sa.ForeignKey("destination.id"), nullable=False
        ),
        sa.Column("marker", sa.String(length=64), nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=True),
        sa.Column("webhook_id", sa.Integer(), nullable=True),
        _ts("created_at"),
        sa.UniqueConstraint("dataset_id"),
    )
    op.create_table(
        "reviewer",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("dataset_id", sa.String(length=36), sa.ForeignKey("dataset.id"), nullable=False),
        sa.Column("pseudonym", sa.String(length=128), nullable=False),
        sa.Column("added_by", sa.String(length=100), nullable=False),
        _ts("added_at"),
        _ts("removed_at", nullable=True),
        sa.UniqueConstraint("dataset_id", "pseudonym"),
    )
    op.create_index("ix_reviewer_dataset_id", "reviewer", ["dataset_id"])
    op.create_table(
        "review_sample",
        sa.Column("id", sa.String(length=36), primary_key=True),
        sa.Column("dataset_id", sa.String(length=36), sa.ForeignKey("dataset.id"), nullable=False),
        sa.Column("checkpoint_seq", sa.Integer(), nullable=False),
        sa.Column("checkpoint_root", sa.String(length=64), nullable=False),
        sa.Column("seed", sa.String(length=64), nullable=False),
        sa.Column("rate", sa.String(length=16), nullable=False),
        sa.Column("population", sa.JSON(), nullable=True),
        sa.Column("drawn", sa.JSON(), nullable=True),
        _ts("drawn_at"),
    )
    op.create_index("ix_review_sample_dataset_id", "review_sample", ["dataset_id"])


def downgrade() -> None:
    for table in ("review_sample", "reviewer", "review_project", "review_item"):
        op.drop_table(table)
