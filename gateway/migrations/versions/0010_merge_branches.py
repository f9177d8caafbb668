"""Merge the schema branches of lineage, pseudonymisation, policies and Label Studio.

Revision ID: 0010_merge_branches
Revises: 0002_lineage, 0003_pseudonymisation, 0004_policies, 0009_labelstudio_task_digest
"""

from __future__ import annotations

revision = "0010_merge_branches"
down_revision = (
    "0002_lineage",
    "0003_pseudonymisation",
    "0004_policies",
    "0009_labelstudio_task_digest",
)
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Nothing to change: one head again, so later migrations have a single parent."""


def downgrade() -> None:
    """Nothing to change."""
