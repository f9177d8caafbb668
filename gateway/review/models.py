"""Tables of the review loop (migration 0019_review).

`ReviewItem` is the one record per asset sent to review, and per decision that was ignored
(a decision by someone who is not a reviewer of the dataset is kept, as its own row with
decision `ignored`, and changes nothing). The governance report reads these rows through
`gateway.review.outcomes.review_outcomes`."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Column, DateTime, Float, Index, String, Text, UniqueConstraint
from sqlmodel import Field, SQLModel


def _ts(nullable: bool = False) -> Any:
    return Field(default=None, sa_column=Column(DateTime(timezone=True), nullable=nullable))


class ReviewReason(StrEnum):
    QUARANTINED = "quarantined"  # the engine or the leak check did not clear it
    FLAGGED = "flagged"  # an annotator flagged it (an open incident)
    SAMPLED = "sampled"  # drawn from the released assets of a batch
    CALIBRATION = "calibration"  # a planted item that measures reviewer recall


class ReviewDecision(StrEnum):
    RELEASED = "released"
    REJECTED = "rejected"
    REPROCESS = "reprocess"
    IGNORED = "ignored"  # made by someone not on the dataset's reviewer list


class ReviewItem(SQLModel, table=True):
    """One asset in review, and what was decided about it.

    `findings` maps a label (face, plate, text) to the number of boxes the reviewer drew with
    it: on a sampled, released asset any finding is a residual leak. `sample_ref` names the
    draw (`ReviewSample.id`) a sampled item came from; `lead_time_seconds` is Label Studio's
    own measure of the time the reviewer spent on the task."""

    __tablename__ = "review_item"
    # every Label Studio webhook asks whether its task is an open review (gateway.api.webhooks)
    __table_args__ = (Index("ix_review_item_task", "destination_id", "ls_task_id"),)
    id: str = Field(primary_key=True, max_length=36)
    dataset_id: str = Field(foreign_key="dataset.id", index=True, max_length=36)
    asset_id: str = Field(foreign_key="asset.id", index=True, max_length=36)
    reason: str = Field(sa_column=Column(String(16), nullable=False, index=True))
    detail: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    sample_ref: str | None = Field(default=None, max_length=36, index=True)
    opened_at: datetime = _ts()
    decided_at: datetime | None = _ts(nullable=True)
    decision: str | None = Field(default=None, sa_column=Column(String(16), nullable=True))
    reviewer: str | None = Field(default=None, max_length=128, description="keyed pseudonym")
    findings: dict[str, int] = Field(default_factory=dict, sa_column=Column(JSON))
    lead_time_seconds: float | None = Field(default=None, sa_column=Column(Float, nullable=True))
    policy_version_id: str | None = Field(default=None, foreign_key="policyversion.id")
    destination_id: str | None = Field(default=None, foreign_key="destination.id", max_length=36)
    ls_task_id: int | None = None
    ls_annotation_id: int | None = None
    incident_id: str | None = Field(default=None, max_length=36)
    hold_id: str | None = Field(default=None, max_length=36)
    original_available: bool = True
    details: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON))


class ReviewProject(SQLModel, table=True):
    """The Label Studio project that reviews one dataset, on the destination the admin named
    for review. Written (project_id None) before the project is created, as sync does."""

    __tablename__ = "review_project"
    __table_args__ = (UniqueConstraint("dataset_id"),)
    id: int | None = Field(default=None, primary_key=True)
    dataset_id: str = Field(foreign_key="dataset.id", max_length=36)
    destination_id: str = Field(foreign_key="destination.id", max_length=36)
    marker: str = Field(max_length=64)
    project_id: int | None = None
    webhook_id: int | None = None
    created_at: datetime = _ts()


class Reviewer(SQLModel, table=True):
    """A Label Studio user (by keyed pseudonym) allowed to decide reviews of one dataset."""

    __tablename__ = "reviewer"
    __table_args__ = (UniqueConstraint("dataset_id", "pseudonym"),)
    id: int | None = Field(default=None, primary_key=True)
    dataset_id: str = Field(foreign_key="dataset.id", index=True, max_length=36)
    pseudonym: str = Field(max_length=128)
    added_by: str = Field(max_length=100)
    added_at: datetime = _ts()
    removed_at: datetime | None = _ts(nullable=True)


class ReviewSample(SQLModel, table=True):
    """One draw of released assets for review. The seed is the digest of the signed lineage
    checkpoint that closes the batch, fixed before the draw; anyone holding the checkpoint
    and the population can recompute `drawn` (`privacy-gateway review verify-sample`)."""

    __tablename__ = "review_sample"
    id: str = Field(primary_key=True, max_length=36)
    dataset_id: str = Field(foreign_key="dataset.id", index=True, max_length=36)
    checkpoint_seq: int
    checkpoint_root: str = Field(max_length=64)
    seed: str = Field(max_length=64)
    rate: str = Field(max_length=16, description="decimal string, as the policy wrote it")
    population: list[str] = Field(default_factory=list, sa_column=Column(JSON))
    drawn: list[str] = Field(default_factory=list, sa_column=Column(JSON))
    drawn_at: datetime = _ts()


class ReviewCandidate(SQLModel, table=True):
    """A leak-check quarantine's candidate rendition: the engine's masked image that failed the
    leak check, metadata-free, sealed under the dataset key like an original (it may still
    show a person). Served only to the dataset's reviewers while its item is open; deleted
    when the review ends, when the asset is processed again, and with the asset (erasure,
    retention). `leak_hits` are the hits that persisted (pixels), shown as pre-annotations."""

    __tablename__ = "review_candidate"
    asset_id: str = Field(foreign_key="asset.id", primary_key=True, max_length=36)
    blob: str = Field(max_length=500)
    sha256: str = Field(max_length=64, description="SHA-256 of the plain image")
    key_version: int
    leak_hits: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON))
    created_at: datetime = _ts()
