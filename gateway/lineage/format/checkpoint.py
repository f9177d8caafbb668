"""Signed checkpoints (RFC 9162-style signed tree heads): their canonical body, its checks, and
checkpoint files pinned outside the data directory.

A checkpoint says: records 1..tree_size have Merkle root R and chain head H, signed by key K.
A pinned checkpoint file is JSON Lines, one signed tree head a line, oldest first:

    {"kind": "checkpoint", "tree_size": N, "key_id": K, "body": "<RFC 8785>",
     "signature": "<base64 Ed25519>", "frontier": ["<hex>", ...]}

`frontier` (the Merkle subtree roots of records 1..N) lets a verifier continue the tree from N
without re-reading records 1..N; it is checked against the signed root, so it needs no
signature of its own.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from gateway.core.errors import IntegrityFailure
from gateway.lineage.format.canonical import canonical_json
from gateway.lineage.format.errors import AnchorInvalid
from gateway.lineage.format.keys import verify_signature
from gateway.lineage.format.merkle import Frontier, ProofError

CHECKPOINT_SCHEMA = "lpg.lineage.checkpoint/v1"
ORIGIN = "label-studio-privacy-gateway/lineage"
HEX64 = frozenset("0123456789abcdef")


def checkpoint_body(
    *, tree_size: int, root_hash: str, chain_head: str, time: datetime, key_id: str
) -> dict[str, Any]:
    return {
        "schema": CHECKPOINT_SCHEMA,
        "origin": ORIGIN,
        "tree_size": tree_size,
        "root_hash": root_hash,
        "chain_head": chain_head,
        "time": time.isoformat(timespec="microseconds"),
        "key_id": key_id,
    }


def is_hex64(value: Any) -> bool:
    """A SHA-256 digest as this ledger writes it: 64 lowercase hex digits."""
    return isinstance(value, str) and len(value) == 64 and set(value) <= HEX64


def checkpoint_fields(text: str) -> dict[str, Any]:
    """A signed checkpoint body, parsed and type-checked: canonical, the right schema, a
    non-negative integer size, hex digests and a key id. Raises IntegrityFailure (callers say
    where the checkpoint came from), never a traceback."""
    try:
        body = json.loads(text)
    except (json.JSONDecodeError, RecursionError) as exc:
        raise IntegrityFailure("the checkpoint body is not JSON") from exc
    if not isinstance(body, dict) or body.get("schema") != CHECKPOINT_SCHEMA:
        raise IntegrityFailure("not a lineage checkpoint")
    try:
        canonical = canonical_json(body).decode()
    except (TypeError, ValueError) as exc:
        raise IntegrityFailure("the checkpoint body is not canonical JSON") from exc
    size = body.get("tree_size")
    if (
        canonical != text
        or not isinstance(size, int)
        or isinstance(size, bool)
        or size < 0
        or not is_hex64(body.get("root_hash"))
        or not is_hex64(body.get("chain_head"))
        or not isinstance(body.get("key_id"), str)
    ):
        raise IntegrityFailure("the checkpoint body is malformed")
    return body


def verify_checkpoint(row_body: str, signature: str, public_key: bytes) -> dict[str, Any]:
    """Check one checkpoint's signature; returns its body."""
    body: dict[str, Any] = json.loads(row_body)
    if body.get("schema") != CHECKPOINT_SCHEMA or canonical_json(body).decode() != row_body:
        raise IntegrityFailure("not a canonical lineage checkpoint")
    verify_signature(public_key, row_body.encode(), signature)
    return body


@dataclass(frozen=True, slots=True)
class TreeHead:
    """A signed tree head whose signature has been checked: records 1..tree_size have Merkle
    root `root_hash` and chain head `chain_head`. `source` says where it came from."""

    tree_size: int
    root_hash: str
    chain_head: str
    source: str


@dataclass(frozen=True, slots=True)
class PinnedCheckpoint:
    head: TreeHead
    body: str
    key_id: str
    signature: str
    frontier: Frontier | None


def read_checkpoint_file(path: Path, keys: dict[str, bytes]) -> list[PinnedCheckpoint]:
    """Every checkpoint in a pinned file, each signature checked against `keys` (trusted)."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise AnchorInvalid(
            f"cannot read the checkpoint file {path}: {exc}", path=str(path)
        ) from exc
    pinned = []
    for number, line in enumerate(text.splitlines(), start=1):
        if line.strip():
            pinned.append(_pinned(line, keys, where=f"{path}:{number}"))
    if not pinned:
        raise AnchorInvalid(f"{path} holds no checkpoint", path=str(path))
    return pinned


def _pinned(line: str, keys: dict[str, bytes], *, where: str) -> PinnedCheckpoint:
    try:
        obj = json.loads(line)
    except (json.JSONDecodeError, RecursionError) as exc:
        raise AnchorInvalid(f"{where} is not JSON", at=where) from exc
    if not isinstance(obj, dict) or obj.get("kind") != "checkpoint":
        raise AnchorInvalid(f"{where} is not a checkpoint line", at=where)
    key_id, text, signature = obj.get("key_id"), obj.get("body"), obj.get("signature")
    if not (isinstance(key_id, str) and isinstance(text, str) and isinstance(signature, str)):
        raise AnchorInvalid(f"{where}: key_id, body and signature must be strings", at=where)
    if key_id not in keys:
        raise AnchorInvalid(
            f"{where}: the checkpoint is signed by {key_id}, which is not a trusted key "
            "(nor handed over from one)",
            at=where,
            key_id=key_id,
        )
    body = pinned_fields(text, where=where)
    try:
        verify_signature(keys[key_id], text.encode(), signature)
    except IntegrityFailure as exc:
        raise AnchorInvalid(
            f"{where}: the checkpoint's signature does not verify", at=where
        ) from exc
    if body["key_id"] != key_id:
        raise AnchorInvalid(f"{where}: the checkpoint names another key than its line", at=where)
    head = TreeHead(body["tree_size"], body["root_hash"], body["chain_head"], f"pinned {where}")
    frontier = checked_frontier(obj.get("frontier"), head, where=where)
    return PinnedCheckpoint(head, text, key_id, signature, frontier)


def pinned_fields(text: str, *, where: str) -> dict[str, Any]:
    """`checkpoint_fields`, failing as AnchorInvalid that names where the checkpoint was."""
    try:
        return checkpoint_fields(text)
    except IntegrityFailure as exc:
        raise AnchorInvalid(f"{where}: {exc.message}", at=where) from exc


def checked_frontier(nodes: Any, head: TreeHead, *, where: str) -> Frontier | None:
    """A frontier (list of hex subtree roots) that leads to the head's signed root, or None
    if there is none; anything else is AnchorInvalid."""
    if nodes is None:
        return None
    if not isinstance(nodes, list) or not all(is_hex64(n) for n in nodes):
        raise AnchorInvalid(f"{where}: the frontier is malformed", at=where)
    try:
        frontier = Frontier(head.tree_size, [bytes.fromhex(n) for n in nodes])
    except ProofError as exc:
        raise AnchorInvalid(f"{where}: the frontier does not fit the tree size", at=where) from exc
    if frontier.root().hex() != head.root_hash:
        raise AnchorInvalid(f"{where}: the frontier does not lead to the signed root", at=where)
    return frontier
