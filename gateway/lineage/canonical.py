"""Canonical JSON (RFC 8785) and the hash chain. Signed/hashed data never holds floats."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from typing import Any

import rfc8785

GENESIS_HASH = "0" * 64
SCHEMA = "lpg.lineage/v1"


class FloatInPayload(TypeError):
    """Floats are ambiguous across languages; use integers or decimal strings instead."""


def check_no_floats(value: Any, path: str = "$") -> None:
    if isinstance(value, float):
        raise FloatInPayload(f"float at {path}: use fixed-point integers or decimal strings")
    if isinstance(value, Mapping):
        for key, item in value.items():
            check_no_floats(item, f"{path}.{key}")
    elif isinstance(value, Sequence) and not isinstance(value, str | bytes):
        for i, item in enumerate(value):
            check_no_floats(item, f"{path}[{i}]")


def canonical_json(payload: Mapping[str, Any]) -> bytes:
    check_no_floats(payload)
    return rfc8785.dumps(dict(payload))


def chain_hash(prev_hash: str, canonical: bytes) -> str:
    """SHA-256 over the previous record's hash (32 raw bytes) followed by this record's JSON."""
    return hashlib.sha256(bytes.fromhex(prev_hash) + canonical).hexdigest()
