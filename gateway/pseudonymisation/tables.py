"""Tables of the pseudonymisation step (migration 0003_pseudonymisation; its `gateway_secret`
table is `gateway.core.models.GatewaySecret`, beside the dataset keys)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Column, DateTime, LargeBinary, UniqueConstraint
from sqlmodel import Field, SQLModel


def _ts(nullable: bool = False) -> Any:
    return Field(default=None, sa_column=Column(DateTime(timezone=True), nullable=nullable))


class DatasetSecret(SQLModel, table=True):
    """A dataset's long-lived secrets (pseudonym HMAC key, keyed-digest key, vault key), each
    wrapped by the master key. Unlike the dataset key they do not change on rotation, so
    pseudonyms and duplicate detection stay stable. Shredding nulls `wrapped`."""

    __tablename__ = "dataset_secret"
    __table_args__ = (UniqueConstraint("dataset_id", "purpose", "version"),)
    id: int | None = Field(default=None, primary_key=True)
    dataset_id: str = Field(foreign_key="dataset.id", index=True, max_length=36)
    purpose: str = Field(max_length=32)
    version: int
    master_key_id: str = Field(max_length=64)
    wrapped: bytes | None = Field(default=None, sa_column=Column(LargeBinary, nullable=True))
    created_at: datetime = _ts()
    shredded_at: datetime | None = _ts(nullable=True)


class VaultEntry(SQLModel, table=True):
    """Re-identification vault: pseudonym -> original value, AES-GCM under the vault key."""

    __tablename__ = "vault_entry"
    __table_args__ = (UniqueConstraint("dataset_id", "pseudonym"),)
    id: int | None = Field(default=None, primary_key=True)
    dataset_id: str = Field(foreign_key="dataset.id", index=True, max_length=36)
    field: str = Field(max_length=32)
    pseudonym: str = Field(max_length=64)
    key_version: int
    sealed: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    created_at: datetime = _ts()
