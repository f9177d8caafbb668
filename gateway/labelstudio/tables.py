"""Tables of the Label Studio sync: projects per destination and dataset, ontology versions,
annotations that came back, and incidents (annotator leak flags, quarantines)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Column, DateTime, Text, UniqueConstraint
from sqlmodel import Field, SQLModel


def _ts(nullable: bool = False) -> Any:
    return Field(default=None, sa_column=Column(DateTime(timezone=True), nullable=nullable))


class OntologyVersion(SQLModel, table=True):
    """One dataset ontology, versioned: a new version whenever its canonical digest changes."""

    __tablename__ = "ontology_version"
    __table_args__ = (UniqueConstraint("dataset_id", "version"),)
    id: int | None = Field(default=None, primary_key=True)
    dataset_id: str = Field(foreign_key="dataset.id", index=True, max_length=36)
    version: int
    digest: str = Field(max_length=64)
    document: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    created_at: datetime = _ts()


class LabelStudioProject(SQLModel, table=True):
    """The Label Studio project a dataset maps to on one destination.

    The row is written (project_id None) before the project is created, so a crash between
    the two is resumed by adopting the project that carries `marker` in its description."""

    __tablename__ = "labelstudio_project"
    __table_args__ = (UniqueConstraint("destination_id", "dataset_id"),)
    id: int | None = Field(default=None, primary_key=True)
    destination_id: str = Field(foreign_key="destination.id", index=True, max_length=36)
    dataset_id: str = Field(foreign_key="dataset.id", index=True, max_length=36)
    marker: str = Field(max_length=64)
    project_id: int | None = None
    webhook_id: int | None = None
    ontology_version: int | None = None
    created_at: datetime = _ts()
    updated_at: datetime = _ts()


class Annotation(SQLModel, table=True):
    """An annotation that came back from Label Studio (docs/architecture.md). `annotator` is a keyed
    pseudonym (never the Label Studio e-mail or user id)."""

    __tablename__ = "annotation"
    __table_args__ = (UniqueConstraint("destination_id", "ls_annotation_id"),)
    id: int | None = Field(default=None, primary_key=True)
    asset_id: str = Field(foreign_key="asset.id", index=True, max_length=36)
    destination_id: str = Field(foreign_key="destination.id", index=True, max_length=36)
    task_id: int
    ls_annotation_id: int
    annotator: str = Field(max_length=128)
    result: list[dict[str, Any]] = Field(sa_column=Column(JSON, nullable=False))
    was_cancelled: bool = False
    created_at: datetime = _ts()
    updated_at: datetime = _ts()
    deleted_at: datetime | None = _ts(nullable=True)


class IncidentKind(StrEnum):
    ANNOTATOR_LEAK_FLAG = "annotator_leak_flag"
    REVIEW_FINDING = "review_finding"  # a reviewer found something on a released asset


class Incident(SQLModel, table=True):
    """A possible personal-data breach (GDPR Art. 33) or other event an officer must review."""

    __tablename__ = "incident"
    id: str = Field(primary_key=True, max_length=36)
    asset_id: str = Field(foreign_key="asset.id", index=True, max_length=36)
    kind: str = Field(max_length=32)
    reason: str = Field(sa_column=Column(Text, nullable=False))
    opened_at: datetime = _ts()
    closed_at: datetime | None = _ts(nullable=True)
    details: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON))


class AnnotationFailure(SQLModel, table=True):
    """An annotation event the gateway could not store, or refused after reading it back from
    Label Studio (a webhook Label Studio does not confirm). It holds our reason, never the
    annotation (whose raw object names the annotator); the pull tries unresolved ones again."""

    __tablename__ = "annotation_failure"
    id: int | None = Field(default=None, primary_key=True)
    destination_id: str = Field(foreign_key="destination.id", index=True, max_length=36)
    action: str = Field(max_length=32)
    ls_annotation_id: int = Field(index=True)
    task_id: int | None = None
    code: str = Field(max_length=64)
    reason: str = Field(sa_column=Column(Text, nullable=False))
    attempts: int = 1
    received_at: datetime = _ts()
    resolved_at: datetime | None = _ts(nullable=True)
    resolution: str | None = Field(default=None, max_length=64)
