"""Datasets: the unit of purpose, legal basis, keys and policy. Created with what reports need."""

from __future__ import annotations

import uuid
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlmodel import Session, col, select

from gateway.core.context import GatewayContext
from gateway.core.db import get_by_id_or_name
from gateway.core.errors import Conflict
from gateway.core.models import Dataset, LegalBasis
from gateway.lineage import Action, Actor, recorder
from gateway.pseudonymisation.dataset_secrets import create_dataset_secrets
from gateway.vocabulary import slug


class ControlType(StrEnum):
    BOX = "box"
    POLYGON = "polygon"
    BRUSH = "brush"
    KEYPOINT = "keypoint"
    CHOICE = "choice"


class OntologyLabel(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    name: str = Field(min_length=1, max_length=100)
    control: ControlType
    subgroup: str | None = Field(None, description="attribute used for per-subgroup figures")


class Ontology(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    labels: list[OntologyLabel] = Field(min_length=1)
    instructions: str = ""

    @field_validator("labels")
    @classmethod
    def _unique(cls, labels: list[OntologyLabel]) -> list[OntologyLabel]:
        names = [label.name for label in labels]
        if len(set(names)) != len(names):
            raise ValueError("label names must be unique")
        return labels


class DatasetSpec(BaseModel):
    """What an admin must state when creating a dataset (GDPR Art. 30, AI Act Art. 10)."""

    model_config = ConfigDict(extra="forbid")
    name: str
    purpose: str = Field(min_length=10, max_length=5000)
    controller: str = Field(min_length=2, max_length=500)
    legal_basis: LegalBasis
    data_subject_categories: list[str] = Field(min_length=1)
    personal_data_categories: list[str] = Field(min_length=1)
    ontology: Ontology

    @field_validator("name")
    @classmethod
    def _slug(cls, name: str) -> str:
        return slug(name)


def create_dataset(
    session: Session, ctx: GatewayContext, spec: DatasetSpec, *, actor: Actor
) -> Dataset:
    if session.exec(select(Dataset).where(Dataset.name == spec.name)).first() is not None:
        raise Conflict(f"a dataset named {spec.name!r} already exists", name=spec.name)
    now = ctx.clock()
    dataset = Dataset(
        id=str(uuid.uuid4()),
        name=spec.name,
        purpose=spec.purpose,
        controller=spec.controller,
        legal_basis=spec.legal_basis,
        data_subject_categories=spec.data_subject_categories,
        personal_data_categories=spec.personal_data_categories,
        ontology=spec.ontology.model_dump(mode="json"),
        created_at=now,
    )
    session.add(dataset)
    session.flush()
    key_version = ctx.keys.create_dataset_key(session, dataset.id, now=now)
    create_dataset_secrets(ctx.keys, session, dataset.id, now=now)  # pseudonyms, digests, vault
    recorder(ctx, session, actor, now=now).record(
        Action.DATASET_CREATED,
        entity=dataset.id,
        dataset=dataset.id,
        parameters={
            "legal_basis": spec.legal_basis.value,
            "key_version": key_version,
            "ontology_labels": [label.name for label in spec.ontology.labels],
        },
    )
    return dataset


def get_dataset(session: Session, ref: str) -> Dataset:
    """Find a dataset by id or by name."""
    return get_by_id_or_name(session, Dataset, ref, what="dataset")


def list_datasets(session: Session) -> list[Dataset]:
    return list(session.exec(select(Dataset).order_by(col(Dataset.name))).all())
