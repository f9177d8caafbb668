"""The policy document: one typed, frozen model per section; unknown keys are refused.

A policy names regions by catalogue names (`eu`, `eea`, `adequate`, a country code such as
`DE`, or a region id such as `eu-de`); the region catalogue (`gateway/policy/regions.yaml`)
says what each name means. Retention periods are whole days (integers: no floats in records).
"""

from __future__ import annotations

import re
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from gateway.pseudonymisation.policy import PseudonymisationPolicy
from gateway.vocabulary import slug
from redaction.policy import RedactionPolicy

SCHEMA_VERSION = 1
_REGION_NAME = re.compile(r"^([a-z][a-z0-9\-]{1,63}|[A-Z]{2})$")


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class EnforcedMove(StrEnum):
    """Where data moves, and which list of the residency section governs it."""

    PROCESSING = "processing"  # ingest, redaction workers, the ML backend
    STORAGE = "storage"  # blob store writes
    ANNOTATION = "annotation"  # Label Studio destinations
    EXPORT = "export"  # lineage bundles, reports, dataset exports


_NAMES = (
    " Names from the region catalogue: a group (eu, eea, adequate), an ISO country code (DE)"
    " or a region id (eu-de)."
)


class ResidencyPolicy(_Strict):
    """Where data may be processed, stored, annotated and exported (GDPR Chapter V)."""

    origin: str = Field(
        description="jurisdiction the data is collected under (catalogue id, e.g. eu-gdpr)"
    )
    processing_regions: list[str] = Field(
        min_length=1,
        description="Regions where the gateway and its ML backend may process data." + _NAMES,
    )
    storage_regions: list[str] = Field(
        min_length=1,
        description="Regions where originals and redacted copies may be stored." + _NAMES,
    )
    annotation_regions: list[str] = Field(
        default_factory=list,
        description="Regions a Label Studio destination may be in; empty: none." + _NAMES,
    )
    export_regions: list[str] | None = Field(
        None, description="Regions exports may go to; omitted: the storage regions."
    )
    adequacy_counts: bool = Field(
        False,
        description="Regions in countries with an adequacy decision (Art. 45) for the origin "
        "are allowed too, within the decision's scope (e.g. US: DPF-certified recipients only).",
    )
    transfer_bases: list[str] = Field(
        default_factory=list,
        description="Transfer tools this controller accepts for third countries when a "
        "destination declares one (catalogue ids: dpf, scc, bcr, art49-...).",
    )

    @field_validator(
        "processing_regions", "storage_regions", "annotation_regions", "export_regions"
    )
    @classmethod
    def _region_names(cls, names: list[str] | None) -> list[str] | None:
        for name in names or []:
            if not _REGION_NAME.match(name):
                raise ValueError(
                    f"{name!r} is not a region name: use a group (eu), a country code (DE) "
                    "or a region id (eu-de)"
                )
        return names

    def regions_for(self, move: EnforcedMove) -> list[str]:
        if move is EnforcedMove.PROCESSING:
            return self.processing_regions
        if move is EnforcedMove.STORAGE:
            return self.storage_regions
        if move is EnforcedMove.ANNOTATION:
            return self.annotation_regions
        return self.storage_regions if self.export_regions is None else self.export_regions

    def field_for(self, move: EnforcedMove) -> str:
        if move is EnforcedMove.EXPORT and self.export_regions is None:
            return "storage_regions"
        return f"{move.value}_regions"


class RetentionPolicy(_Strict):
    """How long each kind of data lives, in days from ingest (Art. 5(1)(e))."""

    originals_days: int = Field(
        ge=0,
        le=36500,
        description="Encrypted originals: days after ingest; 0 deletes them (crypto-shredding "
        "the asset's key material) as soon as the asset is released or quarantined.",
    )
    redacted_days: int = Field(
        ge=1, le=36500, description="Redacted copies and everything derived: days after ingest."
    )
    vault_days: int = Field(
        ge=0,
        le=36500,
        description="Pseudonym vault entries (pseudonym -> original value): days after ingest.",
    )
    labelstudio_task_days: int = Field(
        ge=1, le=36500, description="Label Studio tasks: days after ingest of their asset."
    )
    lineage_min_days: int = Field(
        ge=365,
        le=36500,
        description="Lineage is kept at least this long; it must outlive every other period, "
        "so each deletion stays provable.",
    )

    @model_validator(mode="after")
    def _lineage_outlives_data(self) -> RetentionPolicy:
        longest = max(
            self.originals_days, self.redacted_days, self.vault_days, self.labelstudio_task_days
        )
        if self.lineage_min_days < longest:
            raise ValueError(
                f"lineage_min_days ({self.lineage_min_days}) must be at least the longest "
                f"retention period ({longest}), so the record of each deletion outlives the data"
            )
        if self.labelstudio_task_days > self.redacted_days:
            raise ValueError(
                "labelstudio_task_days must not exceed redacted_days: a task shows the "
                "redacted copy"
            )
        return self


class ReviewPolicy(_Strict):
    """Human review of redaction (gateway.review)."""

    sample_rate: str = Field(
        "0",
        pattern=r"^(0(\.[0-9]{1,6})?|1(\.0{1,6})?)$",
        description="share of each batch's released assets drawn for review, a decimal "
        "string such as '0.02' (no floats in signed records); '0' draws none",
    )


class PolicyDocument(_Strict):
    """A whole policy: what an admin writes in `policies/*.yaml`."""

    schema_version: int = Field(SCHEMA_VERSION, ge=SCHEMA_VERSION, le=SCHEMA_VERSION)
    name: str = Field(description="lowercase slug; versions of a policy share its name")
    description: str = Field("", max_length=5000)
    residency: ResidencyPolicy
    retention: RetentionPolicy
    redaction: RedactionPolicy = Field(
        description="the redaction engine's own policy (detectors, thresholds, operator)"
    )
    pseudonymisation: PseudonymisationPolicy = Field(
        description="which metadata is dropped, kept, coarsened or pseudonymised"
    )
    review: ReviewPolicy = Field(
        default_factory=ReviewPolicy, description="human review of redaction: sampling"
    )

    @field_validator("name")
    @classmethod
    def _slug(cls, name: str) -> str:
        return slug(name)
