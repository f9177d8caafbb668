"""labelstudio: projects, ontology versions, annotations, incidents; destination and sync columns

Revision ID: 0005_labelstudio
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0005_labelstudio"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("destination") as batch:
        batch.add_column(sa.Column("master_key_id", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("gateway_url", sa.String(length=500), nullable=True))
        batch.add_column(sa.Column("transfer_basis", sa.String(length=64), nullable=True))
    with op.batch_alter_table("assetsync") as batch:
        batch.add_column(sa.Column("project_id", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("error", sa.Text(), nullable=True))
    op.create_table(
        "ontology_version",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("dataset_id", sa.String(length=36), sa.ForeignKey("dataset.id"), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("document", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("dataset_id", "version"),
    )
    op.create_index("ix_ontology_version_dataset_id", "ontology_version", ["dataset_id"])
    op.create_table(
        "labelstudio_project",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "destination_id", sa.String(length=36), sa.ForeignKey("destination.id"), nullable=False
        ),
        sa.Column("dataset_id", sa.String(length=36), sa.ForeignKey("dataset.id"), nullable=False),
        sa.Column("marker", sa.String(length=64), nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=True),
        sa.Column("webhook_id", sa.Integer(), nullable=True),
        sa.Column("ontology_version", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("destination_id", "dataset_id"),
    )
    op.create_index(
        "ix_labelstudio_project_destination_id", "labelstudio_project", ["destination_id"]
    )
    op.create_index("ix_labelstudio_project_dataset_id", "labelstudio_project", ["dataset_id"])
    op.create_table(
        "annotation",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("asset_id", sa.String(length=36), sa.ForeignKey("asset.id"), nullable=False),
        sa.Column(
            "destination_id", sa.String(length=36), sa.ForeignKey("destination.id"), nullable=False
        ),
        sa.Column("task_id", sa.Integer(), nullable=False),
        sa.Column("ls_annotation_id", sa.Integer(), nullable=False),
        sa.Column("annotator", sa.String(length=128), nullable=False),
        sa.Column("result", sa.JSON(), nullable=False),
        sa.Column("was_cancelled", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
        sa.UniqueConstraint("destination_id", "ls_annotation_id"),
    )
    op.create_index("ix_annotation_asset_id", "annotation", ["asset_id"])
    op.create_index("ix_annotation_destination_id", "annotation", ["destination_id"])
    op.create_table(
        "incident",
        sa.Column("id", sa.String(length=36), primary_key=True),
        sa.Column("asset_id", sa.String(length=36), sa.ForeignKey("asset.id"), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("details", sa.JSON(), nullable=True),
    )
    op.create_index("ix_incident_asset_id", "incident", ["asset_id"])


def downgrade() -> None:
    for table in ("incident", "annotation", "labelstudio_project", "ontology_version"):
        op.drop_table(table)
    with op.batch_alter_table("assetsync") as batch:
        for column in ("error", "attempts", "project_id"):
            batch.drop_column(column)
    with op.batch_alter_table("destination") as batch:
        for column in ("transfer_basis", "gateway_url", "master_key_id"):
            batch.drop_column(column)
