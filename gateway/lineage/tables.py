"""Lineage tables beyond the chain itself: the outbox, the Merkle frontier, signing keys and
signed checkpoints. (The chain records and its head are `LineageRecord`/`LineageHead`.)"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Column, DateTime, Integer, LargeBinary, Text
from sqlmodel import Field, SQLModel


def _ts(nullable: bool = False) -> Any:
    return Field(default=None, sa_column=Column(DateTime(timezone=True), nullable=nullable))


class LineageOutbox(SQLModel, table=True):
    """A record written in the caller's transaction, waiting for the sequencer.

    `id` only orders the drain within one batch (it may have gaps); the chain's total order is
    the `seq` the single sequencer gives each record when it moves it into `lineagerecord`.
    """

    id: int | None = Field(
        default=None,
        sa_column=Column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    )
    record_id: str = Field(max_length=36, unique=True)
    body: str = Field(sa_column=Column(Text, nullable=False), description="JSON without seq/prev")
    created_at: datetime = _ts()


class LineageTree(SQLModel, table=True):
    """The Merkle frontier (roots of the perfect subtrees) of records 1..size, kept by the
    sequencer under the head lock so that a checkpoint costs O(log n), not a pass over the log."""

    id: int = Field(default=1, primary_key=True)
    size: int = Field(sa_column=Column(BigInteger, nullable=False))
    frontier: str = Field(sa_column=Column(Text, nullable=False), description="JSON list of hex")


class LineageSigningKey(SQLModel, table=True):
    """An Ed25519 lineage signing key. The private half is wrapped by the master key
    (aad lpg/v1/lineage-signing-key/{key_id}); a retired key's `wrapped` is destroyed.

    A successor key carries the hand-over statement, signed by the previous key and by itself.
    """

    key_id: str = Field(primary_key=True, max_length=64)
    public_key: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    fingerprint: str = Field(max_length=64, unique=True)
    master_key_id: str = Field(max_length=64)
    wrapped: bytes | None = Field(default=None, sa_column=Column(LargeBinary, nullable=True))
    previous_key_id: str | None = Field(default=None, max_length=64)
    handover: str | None = Field(
        default=None, sa_column=Column(Text, nullable=True), description="RFC 8785 statement"
    )
    handover_old_signature: str | None = Field(default=None, max_length=128)
    handover_new_signature: str | None = Field(default=None, max_length=128)
    created_at: datetime = _ts()
    retired_at: datetime | None = _ts(nullable=True)


class LineageCheckpoint(SQLModel, table=True):
    """A signed tree head: records 1..tree_size have Merkle root `root_hash` (RFC 9162) and
    chain head `chain_head`."""

    tree_size: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    root_hash: str = Field(max_length=64)
    chain_head: str = Field(max_length=64)
    body: str = Field(sa_column=Column(Text, nullable=False), description="RFC 8785, signed")
    key_id: str = Field(max_length=64, foreign_key="lineagesigningkey.key_id")
    signature: str = Field(max_length=128)
    frontier: str | None = Field(
        default=None,
        sa_column=Column(Text, nullable=True),
        description="JSON list of hex: the Merkle frontier at tree_size (unsigned; a verifier "
        "checks it against root_hash before continuing the tree from it)",
    )
    created_at: datetime = _ts()
