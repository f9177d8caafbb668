"""One settings object, built at the entry point and passed in (never read at import time)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class S3Bucket(BaseModel):
    """One region's bucket on an S3-compatible store (AWS S3, MinIO, Ceph RGW, SeaweedFS).

    Credentials: the access key pair inline (the whole map can come from a secret as JSON),
    from two files (mounted secrets), or `default_credentials` (boto3's own chain: instance
    or pod role, web identity, AWS_* variables). A process lists only the regions whose
    credentials it holds: a worker of region X lists X alone."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    bucket: str = Field(min_length=3, max_length=63)
    endpoint_url: str | None = Field(None, description="None: AWS S3 itself")
    s3_region: str | None = Field(
        None, description="the S3 API's own region name for signing (e.g. eu-central-1)"
    )
    addressing_style: Literal["auto", "path", "virtual"] = "auto"
    prefix: str = Field("", pattern=r"^([a-z0-9][a-z0-9_\-]*/)*$", description="key prefix")
    access_key_id: SecretStr | None = None
    secret_access_key: SecretStr | None = None
    access_key_id_file: Path | None = None
    secret_access_key_file: Path | None = None
    default_credentials: bool = False
    ca_bundle: Path | None = Field(None, description="CA bundle for a private endpoint's TLS")

    @model_validator(mode="after")
    def _one_credential_source(self) -> S3Bucket:
        inline = self.access_key_id is not None or self.secret_access_key is not None
        files = self.access_key_id_file is not None or self.secret_access_key_file is not None
        if sum((inline, files, self.default_credentials)) != 1:
            raise ValueError(
                "give exactly one credential source: access_key_id + secret_access_key, "
                "access_key_id_file + secret_access_key_file, or default_credentials"
            )
        if inline and (self.access_key_id is None or self.secret_access_key is None):
            raise ValueError("access_key_id and secret_access_key go together")
        if files and (self.access_key_id_file is None or self.secret_access_key_file is None):
            raise ValueError("access_key_id_file and secret_access_key_file go together")
        return self


class Settings(BaseSettings):
    """Gateway configuration; every field can be set as `GATEWAY_<NAME>` in the environment."""

    model_config = SettingsConfigDict(env_prefix="GATEWAY_", extra="forbid")

    data_dir: Path = Field(Path("var"), description="root of everything the gateway keeps on disk")
    database_url: str | None = Field(
        None, description="SQLAlchemy URL; default: a SQLite file in the data directory"
    )
    storage_dir: Path | None = Field(None, description="blob store; default: <data_dir>/storage")
    storage_backend: Literal["local", "s3"] = Field(
        "local", description="local: the storage directory; s3: one bucket per region"
    )
    s3_buckets: dict[str, S3Bucket] = Field(
        default_factory=dict,
        description="region -> its bucket (JSON); only the regions this process may access",
    )
    region: str = Field("eu-de", description="region this gateway instance runs in")
    storage_region: str | None = Field(
        None, description="region of the blob store (residency checks); default: `region`"
    )
    master_key_file: Path | None = Field(
        None, description="file holding the base64 master key; default: <data_dir>/master.key"
    )
    master_key: SecretStr | None = Field(
        None, description="base64 master key from the environment (wins over the file)"
    )
    workers: int = Field(default_factory=lambda: max(1, os.cpu_count() or 1), ge=1, le=256)
    max_upload_bytes: int = Field(50 * 1024 * 1024, gt=0)
    max_upload_request_bytes: int = Field(
        200 * 1024 * 1024,
        gt=0,
        description="one upload request, all its files together (refused with 413 past it)",
    )
    max_pixels: int = Field(50_000_000, gt=0)
    job_timeout_seconds: float = Field(120.0, gt=0)
    job_lease_seconds: float = Field(
        15.0, gt=0, description="a running job not heard from for this long is taken again"
    )
    job_heartbeat_seconds: float = Field(2.0, gt=0, description="how often a running job says so")
    job_max_attempts: int = Field(
        5, ge=1, le=50, description="attempts before a job fails with its reason (fail closed)"
    )
    worker_poll_seconds: float = Field(5.0, gt=0, description="idle workers look for jobs")
    role: Literal["all", "api", "worker"] = Field(
        "all", description="api: no background work; worker: jobs and schedules; all: both"
    )
    log_level: str = Field("INFO", description="log level of the JSON logs")
    retention_interval_seconds: float = Field(
        3600.0, ge=0, description="how often the service runs retention; 0: never (use the CLI)"
    )
    annotation_pull_interval_seconds: float = Field(
        900.0,
        ge=0,
        description="how often the service pulls annotations webhooks missed; 0: never (CLI)",
    )
    review_pull_interval_seconds: float = Field(
        60.0,
        ge=0,
        description="how often the service reads reviewers' decisions back; 0: never (CLI)",
    )

    broker_url: SecretStr | None = Field(
        None,
        description="Celery broker (amqp://...): redaction jobs run on `privacy-gateway worker` "
        "processes and periodic work on `privacy-gateway scheduler`; unset: the embedded runner",
    )
    broker_queue_prefix: str = Field(
        "", max_length=40, description="prefix of every queue name (several gateways, one broker)"
    )
    worker_regions: str | None = Field(
        None,
        description="regions that run workers, comma-separated, in order of preference: a job "
        "goes to the queue of the first its dataset's residency allows; default: `region`",
    )
    relay_interval_seconds: float = Field(
        5.0, gt=0, description="how often the scheduler's relay looks for jobs the broker lost"
    )
    relay_republish_seconds: float = Field(
        60.0, gt=0, description="a due job published this long ago and not taken is sent again"
    )
    kms_url: str | None = Field(
        None, description="key service holding one master key per region (instead of a file)"
    )
    kms_credential: SecretStr | None = Field(
        None,
        description="this process's credential at the key service: it names the region (the "
        "scheduler's: the gateway-wide credential, which names none)",
    )

    lineage_checkpoint_poll_seconds: float = Field(
        30.0, gt=0, description="how often the checkpointer looks whether a checkpoint is due"
    )
    lineage_checkpoint_log: Path | None = Field(
        None,
        description="append-only file OUTSIDE the data directory: every signed lineage "
        "checkpoint is also written there, and `verify` pins the ledger to it",
    )
    lineage_trusted_fingerprint: str | None = Field(
        None,
        description="SHA-256 fingerprint(s), comma-separated, of the lineage signing key "
        "`verify` and reports trust (the database's keys count only if handed over from it)",
    )

    @model_validator(mode="after")
    def _resolve_paths(self) -> Settings:
        self.data_dir = self.data_dir.expanduser()
        return self

    @model_validator(mode="after")
    def _s3_needs_its_write_bucket(self) -> Settings:
        write_region = self.storage_region or self.region
        if self.storage_backend == "s3" and write_region not in self.s3_buckets:
            raise ValueError(
                f"storage_backend s3 writes to region {write_region!r}: "
                f"s3_buckets must name its bucket (it names {sorted(self.s3_buckets)})"
            )
        return self

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'gateway.db').resolve()}"

    @property
    def broker_configured(self) -> bool:
        return self.broker_url is not None and bool(self.broker_url.get_secret_value())

    @property
    def routing_regions(self) -> list[str]:
        names = (self.worker_regions or self.region).split(",")
        return [name.strip() for name in names if name.strip()]

    @property
    def resolved_storage_dir(self) -> Path:
        return self.storage_dir or self.data_dir / "storage"

    @property
    def resolved_master_key_file(self) -> Path:
        return self.master_key_file or self.data_dir / "master.key"
