"""Database tables (SQLModel). Migrations live in `gateway/migrations` (Alembic)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    DateTime,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlmodel import Field, SQLModel

# re-exported: defined apart so the command line can build its options without SQLModel
from gateway.vocabulary import LegalBasis as LegalBasis
from gateway.vocabulary import Role as Role

# The largest value of each integer column width: a request bound so that a larger number is a
# 422 and never reaches the database (PostgreSQL would refuse it as out of range).
MAX_INT = 2**31 - 1  # an Integer column (32-bit): row ids such as Job.id, versions
MAX_BIGINT = 2**63 - 1  # a BigInteger column (64-bit): the lineage seq; offsets


def _ts(nullable: bool = False) -> Any:
    return Field(default=None, sa_column=Column(DateTime(timezone=True), nullable=nullable))


def _enum(index: bool = False) -> Any:
    """Enums are stored as their string values (portable; new members need no DB migration)."""
    return Field(sa_column=Column(String(32), nullable=False, index=index))


class AssetState(StrEnum):
    """The lifecycle. Whether the original is still stored is not a state: see
    `Asset.original_deleted_at` (a released asset stays released after retention deletes it)."""

    RECEIVED = "received"
    PROCESSING = "processing"
    RELEASED = "released"
    QUARANTINED = "quarantined"
    REJECTED = "rejected"
    EXPIRED = "expired"
    ERASED = "erased"


class JobState(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


class SyncState(StrEnum):
    PENDING = "pending"
    INTENT_RECORDED = "intent_recorded"
    SYNCED = "synced"
    FAILED = "failed"
    REMOVED = "removed"


class Dataset(SQLModel, table=True):
    id: str = Field(primary_key=True, max_length=36)
    name: str = Field(index=True, unique=True, max_length=200)
    purpose: str = Field(sa_column=Column(Text, nullable=False))
    controller: str = Field(max_length=500)
    legal_basis: LegalBasis = _enum()
    data_subject_categories: list[str] = Field(sa_column=Column(JSON, nullable=False))
    personal_data_categories: list[str] = Field(sa_column=Column(JSON, nullable=False))
    ontology: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    policy_version_id: str | None = Field(default=None, foreign_key="policyversion.id")
    created_at: datetime = _ts()


class DatasetKey(SQLModel, table=True):
    """A per-dataset data key, wrapped (AES-GCM) by the master key. Shredding nulls `wrapped`."""

    __table_args__ = (UniqueConstraint("dataset_id", "version"),)
    id: int | None = Field(default=None, primary_key=True)
    dataset_id: str = Field(foreign_key="dataset.id", index=True, max_length=36)
    version: int
    master_key_id: str = Field(max_length=64)
    wrapped: bytes | None = Field(default=None, sa_column=Column(LargeBinary, nullable=True))
    created_at: datetime = _ts()
    shredded_at: datetime | None = _ts(nullable=True)


class GatewaySecret(SQLModel, table=True):
    """Gateway-wide secrets (the API-key pepper) that must outlive master-key rotation."""

    __tablename__ = "gateway_secret"
    purpose: str = Field(primary_key=True, max_length=32)
    master_key_id: str = Field(max_length=64)
    wrapped: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    created_at: datetime = _ts()


class Asset(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("dataset_id", "content_digest"),)
    id: str = Field(primary_key=True, max_length=36)
    dataset_id: str = Field(foreign_key="dataset.id", index=True, max_length=36)
    state: AssetState = _enum(index=True)
    content_digest: str = Field(max_length=64, description="HMAC-SHA256 of the bytes, dataset key")
    source_format: str | None = Field(default=None, max_length=16)
    width: int | None = None
    height: int | None = None
    byte_size: int
    # indexed: a blob is deleted only once no other asset row names it (gateway.policy.derived)
    original_blob: str | None = Field(default=None, max_length=200, index=True)
    key_version: int | None = None
    redacted_blob: str | None = Field(default=None, max_length=200, index=True)
    redacted_sha256: str | None = Field(default=None, max_length=64)
    private_meta: bytes | None = Field(
        default=None,
        sa_column=Column(LargeBinary, nullable=True),
        description="AES-GCM sealed JSON: file name, subject id, uploader (pseudonymised later)",
    )
    capture_time: datetime | None = _ts(nullable=True)
    # set when the original was deleted (retention, expiry, erasure); the state is unchanged
    original_deleted_at: datetime | None = _ts(nullable=True)
    reasons: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON))
    policy_version_id: str | None = Field(default=None, foreign_key="policyversion.id")
    created_at: datetime = _ts()
    updated_at: datetime = _ts()


class AssetSync(SQLModel, table=True):
    """Sync state of one asset towards one Label Studio destination."""

    asset_id: str = Field(foreign_key="asset.id", primary_key=True, max_length=36)
    destination_id: str = Field(foreign_key="destination.id", primary_key=True, max_length=36)
    state: SyncState = _enum()
    task_id: int | None = None
    project_id: int | None = Field(default=None, description="Label Studio project id")
    attempts: int = 0
    error: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    updated_at: datetime = _ts()
    task_sha256: str | None = Field(
        default=None, max_length=64, description="redacted SHA-256 the task's URL is signed for"
    )


class Detection(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    asset_id: str = Field(foreign_key="asset.id", index=True, max_length=36)
    label: str = Field(max_length=16)
    x: int
    y: int
    w: int
    h: int
    score_milli: int = Field(description="score x 1000, an integer (no floats in signed records)")
    detector: str = Field(max_length=64)
    stage: str = Field(default="detect", max_length=16, description="detect | leak_check")


class PolicyVersion(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("name", "version"),)
    id: str = Field(primary_key=True, max_length=36)
    name: str = Field(max_length=200)
    version: int
    digest: str = Field(max_length=64, description="SHA-256 of the canonical JSON document")
    document: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    activated_at: datetime | None = _ts(nullable=True)
    created_at: datetime = _ts()


class LineageRecord(SQLModel, table=True):
    """Append-only. `seq` is gapless; `record_hash` = SHA-256(prev_hash || canonical payload)."""

    seq: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    record_id: str = Field(max_length=36, unique=True)
    action: str = Field(max_length=64, index=True)
    entity_type: str = Field(max_length=32)
    entity_id: str = Field(max_length=64, index=True)
    dataset_id: str | None = Field(default=None, max_length=36, index=True)
    payload: str = Field(sa_column=Column(Text, nullable=False), description="RFC 8785 JSON")
    prev_hash: str = Field(max_length=64)
    record_hash: str = Field(max_length=64, unique=True)
    created_at: datetime = _ts()


class LineageHead(SQLModel, table=True):
    """The single chain head; updating it in each append serialises writers."""

    id: int = Field(default=1, primary_key=True)
    seq: int = Field(sa_column=Column(BigInteger, nullable=False))
    head_hash: str = Field(max_length=64)


class ApiKey(SQLModel, table=True):
    id: str = Field(primary_key=True, max_length=16)
    secret_hash: str = Field(max_length=64)
    role: Role = _enum()
    label: str = Field(default="", max_length=200)
    dataset_scope: list[str] | None = Field(
        default=None, sa_column=Column(JSON, nullable=True), description="None: every dataset"
    )
    created_at: datetime = _ts()
    expires_at: datetime | None = _ts(nullable=True)
    revoked_at: datetime | None = _ts(nullable=True)
    seal: str | None = Field(
        default=None,
        max_length=64,
        description="keyed MAC (API-key pepper) over id, role, scope, expiry and revocation: "
        "a row edited in the database stops authenticating",
    )


class Destination(SQLModel, table=True):
    id: str = Field(primary_key=True, max_length=36)
    name: str = Field(unique=True, max_length=200)
    url: str = Field(max_length=500)
    region: str = Field(max_length=64)
    token_sealed: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    master_key_id: str | None = Field(default=None, max_length=64)
    gateway_url: str | None = Field(default=None, max_length=500, description="as browsers see it")
    transfer_basis: str | None = Field(default=None, max_length=64)
    project_mapping: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON))
    created_at: datetime = _ts()
    image_delivery: str = Field(default="signed-url", max_length=16)
    local_files_root: str | None = Field(
        default=None, max_length=500, description="Label Studio's local-files root, shared"
    )
    allow_local_addresses: bool = Field(
        default=False,
        description="an admin's opt-in: the URL may resolve to loopback, link-local or "
        "unspecified addresses (a Label Studio on this machine); never metadata addresses",
    )


class Job(SQLModel, table=True):
    """A unit of background work. `attempts` counts claims and fences every write a worker
    makes (a stale worker's attempt number no longer matches); a running job's lease is
    extended by its heartbeat, so a dead worker's job is taken again once the lease runs out."""

    __table_args__ = (Index("ix_job_queue_state", "queue", "state"),)
    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(max_length=32)
    asset_id: str | None = Field(
        default=None, foreign_key="asset.id", index=True, max_length=36
    )  # None: a job of a whole dataset (`kind` "sync", the dataset in `payload`)
    state: JobState = _enum(index=True)
    attempts: int = 0
    worker: str | None = Field(default=None, max_length=64)
    error: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    created_at: datetime = _ts()
    updated_at: datetime = _ts()
    queue: str = Field(
        default="default",
        sa_column=Column(String(64), nullable=False, server_default="default"),
        description="which workers may take it (e.g. a region)",
    )
    payload: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    max_attempts: int = Field(
        default=5, sa_column=Column(Integer, nullable=False, server_default="5")
    )
    run_after: datetime | None = _ts(nullable=True)
    lease_expires_at: datetime | None = _ts(nullable=True)
    error_code: str | None = Field(default=None, max_length=64)
    deferrals: int = Field(
        default=0,
        sa_column=Column(Integer, nullable=False, server_default="0"),
        description="attempts given back because the database or storage was away",
    )
    finished_at: datetime | None = _ts(nullable=True)
    published_at: datetime | None = _ts(nullable=True)
    """When its wake-up was last handed to the broker (None: not yet; the outbox relay's mark)."""


class IngestedObject(SQLModel, table=True):
    """An object of an object-storage prefix already imported into a dataset (accepted or
    refused), so a re-run skips it without downloading it again. Named by a keyed digest of
    (bucket, key, ETag) under the dataset's content-digest secret: the table holds no object
    names (file names are personal metadata, sealed on the asset)."""

    dataset_id: str = Field(foreign_key="dataset.id", primary_key=True, max_length=36)
    source_digest: str = Field(primary_key=True, max_length=64)
    asset_id: str = Field(foreign_key="asset.id", index=True, max_length=36)
    created_at: datetime = _ts()
