"""Policy documents as data: canonical form, digest, and what changed between two of them."""

from __future__ import annotations

import hashlib
from datetime import date
from enum import Enum
from typing import Any

import rfc8785
from pydantic import BaseModel

from gateway.policy.schema import PolicyDocument


def plain(value: Any) -> Any:
    """JSON-ready, deterministic: sets become sorted lists (their order is otherwise random)."""
    if isinstance(value, BaseModel):
        return {name: plain(getattr(value, name)) for name in type(value).model_fields}
    if isinstance(value, set | frozenset):
        return sorted(plain(v) for v in value)
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, date):
        return value.isoformat()
    return value


def canonical_document(doc: PolicyDocument) -> dict[str, Any]:
    result: dict[str, Any] = plain(doc)
    return result


def policy_digest(doc: PolicyDocument) -> str:
    """SHA-256 over the RFC 8785 form (thresholds are floats; RFC 8785 fixes their text)."""
    return hashlib.sha256(rfc8785.dumps(canonical_document(doc))).hexdigest()


def diff_documents(old: PolicyDocument, new: PolicyDocument) -> list[dict[str, Any]]:
    """Changed leaves as {"field": "a.b.c", "old": ..., "new": ...}, in document order."""
    changes: list[dict[str, Any]] = []
    _diff(canonical_document(old), canonical_document(new), "", changes)
    return changes


def _diff(old: Any, new: Any, path: str, out: list[dict[str, Any]]) -> None:
    if isinstance(old, dict) and isinstance(new, dict):
        for key in [*old, *(k for k in new if k not in old)]:
            _diff(old.get(key), new.get(key), f"{path}.{key}" if path else key, out)
        return
    if old != new:
        out.append({"field": path, "old": old, "new": new})
