"""Trust anchors the database does not hold: signed checkpoints pinned in a file outside the
data directory, and the signing key the verifier trusts.

A checkpoint file is JSON Lines, one signed tree head a line, oldest first:

    {"kind": "checkpoint", "tree_size": N, "key_id": K, "body": "<RFC 8785>",
     "signature": "<base64 Ed25519>", "frontier": ["<hex>", ...]}

The checkpointer appends a line after every checkpoint it commits (when
`GATEWAY_LINEAGE_CHECKPOINT_LOG` names a file), and `lineage checkpoint --output FILE` appends
the newest one for a compliance officer to keep. `frontier` (the Merkle subtree roots of
records 1..N) lets a verifier continue the tree from N without re-reading records 1..N; it is
checked against the signed root, so it needs no signature of its own.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlmodel import Session

from gateway.errors import IntegrityFailure, KeyUnavailable
from gateway.lineage.bundle import key_line
from gateway.lineage.checkpoints import checkpoint_fields as parse_checkpoint
from gateway.lineage.checkpoints import is_hex64, leaf_hashes
from gateway.lineage.ledger import current_frontier, read_head
from gateway.lineage.merkle import Frontier, ProofError
from gateway.lineage.signing import (
    active_key,
    all_keys,
    public_raw,
    signing_key_aad,
    verify_signature,
)
from gateway.lineage.tables import LineageCheckpoint
from gateway.lineage.verify import Anchor, BundleInvalid, _check_keys
from gateway.lineage.walk import LedgerTampered, TreeHead

if TYPE_CHECKING:
    from gateway.keys import KeyProvider


class AnchorInvalid(IntegrityFailure):
    """A pinned checkpoint file is unreadable, malformed or not signed by a trusted key."""

    code, title = "lineage-anchor-invalid", "Pinned lineage checkpoint is invalid"


class NotAnchored(IntegrityFailure):
    """Nothing outside the database vouches for the ledger: no trusted key was given, or no
    signed checkpoint exists."""

    code, title = "lineage-not-anchored", "Lineage has no trust anchor"


@dataclass(frozen=True, slots=True)
class PinnedCheckpoint:
    head: TreeHead
    body: str
    key_id: str
    signature: str
    frontier: Frontier | None


def pinned_line(session: Session, row: LineageCheckpoint) -> dict[str, Any]:
    """The checkpoint as a pinned-file line, with the Merkle frontier at its size (kept with
    the checkpoint since migration 0014; else rebuilt from the records)."""
    if row.frontier is not None:
        nodes = [bytes.fromhex(n) for n in json.loads(row.frontier)]
        return checkpoint_line(row, Frontier(row.tree_size, nodes))
    return checkpoint_line(row, frontier_at(session, row.tree_size))


def frontier_at(session: Session, size: int) -> Frontier:
    head_seq, _ = read_head(session, lock=False)
    if head_seq == size:
        return current_frontier(session, size)[0]
    frontier = Frontier()
    for leaf in leaf_hashes(session, size):
        frontier.append(leaf)
    return frontier


def checkpoint_line(row: LineageCheckpoint, frontier: Frontier) -> dict[str, Any]:
    return {
        "kind": "checkpoint",
        "tree_size": row.tree_size,
        "key_id": row.key_id,
        "body": row.body,
        "signature": row.signature,
        "frontier": [node.hex() for node in frontier.nodes],
    }


def append_checkpoint(path: Path, line: dict[str, Any]) -> None:
    """Append one line and flush it to disk (created 0600: it names no secret, but only the
    compliance side should be able to change it)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    with os.fdopen(fd, "a", encoding="utf-8") as fh:
        fh.write(json.dumps(line, separators=(",", ":")) + "\n")
        fh.flush()
        os.fsync(fh.fileno())


def own_key_anchor(keys: KeyProvider, session: Session) -> Anchor:
    """The gateway's own active signing key, as a trust anchor: its private half unwraps under
    the master key (AES-GCM, bound to the key id) and matches the stored public key. A
    database-only attacker cannot make a key row that passes this; someone holding the master
    key can (see docs/threat-model.md, Ledger)."""
    row = active_key(session)
    if row is None or row.wrapped is None:
        raise NotAnchored(
            "the database holds no active lineage signing key: give the key you trust "
            "(--trusted-key or --fingerprint)"
        )
    try:
        seed = keys.unwrap(
            row.wrapped, aad=signing_key_aad(row.key_id), master_key_id=row.master_key_id
        )
        public = public_raw(Ed25519PrivateKey.from_private_bytes(seed).public_key())
    except (IntegrityFailure, KeyUnavailable, ValueError) as exc:
        raise LedgerTampered(
            f"the active signing key {row.key_id} does not unwrap under this gateway's master "
            "key: the key table was replaced",
            key_id=row.key_id,
        ) from exc
    if public != row.public_key:
        raise LedgerTampered(
            f"the active signing key {row.key_id}'s public half is not its private half's",
            key_id=row.key_id,
        )
    return Anchor(public_keys=[public])


def trusted_keys(session: Session, anchor: Anchor) -> tuple[dict[str, bytes], str]:
    """The database's signing keys, trusted only as far as a hand-over chain (each hand-over
    signed by the old key and the new one) reaches a key the verifier pinned."""
    lines = [key_line(row) for row in all_keys(session)]
    try:
        chain, anchored = _check_keys(lines, anchor, where="database")
    except BundleInvalid as exc:
        raise LedgerTampered(exc.message, **exc.details) from exc
    assert anchored is not None  # noqa: S101 (the anchor is not empty here)
    return chain, anchored


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
    body = checkpoint_fields(text, where=where)
    try:
        verify_signature(keys[key_id], text.encode(), signature)
    except IntegrityFailure as exc:
        raise AnchorInvalid(
            f"{where}: the checkpoint's signature does not verify", at=where
        ) from exc
    if body["key_id"] != key_id:
        raise AnchorInvalid(f"{where}: the checkpoint names another key than its line", at=where)
    head = TreeHead(body["tree_size"], body["root_hash"], body["chain_head"], f"pinned {where}")
    return PinnedCheckpoint(head, text, key_id, signature, _frontier(obj, head, where=where))


def checkpoint_fields(text: str, *, where: str) -> dict[str, Any]:
    """A signed checkpoint body, parsed and type-checked (typed errors, never a traceback)."""
    try:
        return parse_checkpoint(text)
    except IntegrityFailure as exc:
        raise AnchorInvalid(f"{where}: {exc.message}", at=where) from exc


def _frontier(obj: dict[str, Any], head: TreeHead, *, where: str) -> Frontier | None:
    return checked_frontier(obj.get("frontier"), head, where=where)


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
