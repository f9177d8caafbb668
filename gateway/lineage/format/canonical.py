"""Canonical JSON (RFC 8785) and the hash chain. Signed/hashed data never holds floats."""

from __future__ import annotations

import hashlib
import json
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


MAX_SAFE_INTEGER = 2**53 - 1


def _plain(value: Any) -> bool:
    """Check a payload's types (raises on floats) and say whether `json.dumps` with sorted keys
    already gives its RFC 8785 form: ASCII keys (so code-point order is UTF-16 order) and
    integers a double holds exactly. Anything else takes the `rfc8785` reference encoder."""
    if isinstance(value, str) or value is None or isinstance(value, bool):
        return True
    if isinstance(value, int):
        return -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER
    if isinstance(value, Mapping):
        ok = True
        for key, item in value.items():
            ok = _plain(item) and isinstance(key, str) and key.isascii() and ok
        return ok
    if isinstance(value, list | tuple):
        ok = True
        for item in value:
            ok = _plain(item) and ok
        return ok
    return False


def canonical_json(payload: Mapping[str, Any]) -> bytes:
    """RFC 8785 canonical JSON; floats refused. Plain payloads (the ledger's) take the stdlib's
    C encoder, which gives the same bytes for them (tested against `rfc8785`)."""
    if _plain(payload):
        text = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        return text.encode()
    check_no_floats(payload)
    return rfc8785.dumps(dict(payload))


def chain_hash(prev_hash: str, canonical: bytes) -> str:
    """SHA-256 over the previous record's hash (32 raw bytes) followed by this record's JSON."""
    return hashlib.sha256(bytes.fromhex(prev_hash) + canonical).hexdigest()
