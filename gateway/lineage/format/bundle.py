"""The bundle's layout: JSON Lines, one object per line, in this order.

    {"kind": "header", ...}          what was exported (filter, tree size)
    {"kind": "key", ...}             every signing key, oldest first, with hand-over signatures
    {"kind": "checkpoint", ...}      signed tree heads up to the bundle's tree size
    {"kind": "consistency", ...}     (partial bundles) each older checkpoint -> the newest
    {"kind": "record", ...}          the records, in chain order; partial bundles add proofs
    {"kind": "manifest", ...}        the signed list of (seq, record hash) the bundle must hold

The exporter (`gateway.lineage.bundle`) writes these lines from the database; `verify` reads
them with nothing else.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import Any, Protocol

from gateway.lineage.format.keys import ALG, b64

BUNDLE_SCHEMA = "lpg.lineage.bundle/v1"
MANIFEST_SCHEMA = "lpg.lineage.bundle-manifest/v1"


class SigningKeyFields(Protocol):
    """What a key line is made of (a stored signing key has these fields)."""

    @property
    def key_id(self) -> str: ...
    @property
    def public_key(self) -> bytes: ...
    @property
    def fingerprint(self) -> str: ...
    @property
    def created_at(self) -> datetime: ...
    @property
    def retired_at(self) -> datetime | None: ...
    @property
    def previous_key_id(self) -> str | None: ...
    @property
    def handover(self) -> str | None: ...
    @property
    def handover_old_signature(self) -> str | None: ...
    @property
    def handover_new_signature(self) -> str | None: ...


class CheckpointFields(Protocol):
    """What a checkpoint line is made of (a stored checkpoint has these fields)."""

    @property
    def tree_size(self) -> int: ...
    @property
    def body(self) -> str: ...
    @property
    def key_id(self) -> str: ...
    @property
    def signature(self) -> str: ...


def entries_digest(entries: list[list[Any]]) -> str:
    return hashlib.sha256(json.dumps(entries, separators=(",", ":")).encode()).hexdigest()


def key_line(row: SigningKeyFields) -> dict[str, Any]:
    return {
        "kind": "key",
        "key_id": row.key_id,
        "alg": ALG,
        "public_key": b64(row.public_key),
        "fingerprint": row.fingerprint,
        "created_at": row.created_at.isoformat(),
        "retired_at": row.retired_at.isoformat() if row.retired_at else None,
        "previous_key_id": row.previous_key_id,
        "handover": row.handover,
        "handover_old_signature": row.handover_old_signature,
        "handover_new_signature": row.handover_new_signature,
    }


def checkpoint_line(row: CheckpointFields) -> dict[str, Any]:
    return {
        "kind": "checkpoint",
        "tree_size": row.tree_size,
        "body": row.body,
        "key_id": row.key_id,
        "signature": row.signature,
    }
