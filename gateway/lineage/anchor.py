"""Trust anchors the database does not hold: signed checkpoints pinned in a file outside the
data directory (its format and reader: `gateway.lineage.format.checkpoint`), and the signing
key the verifier trusts.

The checkpointer appends a line after every checkpoint it commits (when
`GATEWAY_LINEAGE_CHECKPOINT_LOG` names a file), and `lineage checkpoint --output FILE` appends
the newest one for a compliance officer to keep. `frontier` (the Merkle subtree roots of
records 1..N) lets a verifier continue the tree from N without re-reading records 1..N.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlmodel import Session

from gateway.core.errors import IntegrityFailure, KeyUnavailable
from gateway.lineage.checkpoints import leaf_hashes
from gateway.lineage.format.bundle import key_line
from gateway.lineage.format.errors import BundleInvalid
from gateway.lineage.format.keys import Anchor, check_key_chain, public_raw
from gateway.lineage.format.merkle import Frontier
from gateway.lineage.ledger import current_frontier, read_head
from gateway.lineage.signing import active_key, all_keys, signing_key_aad
from gateway.lineage.tables import LineageCheckpoint
from gateway.lineage.walk import LedgerTampered

if TYPE_CHECKING:
    from gateway.core.keys import KeyProvider


class NotAnchored(IntegrityFailure):
    """Nothing outside the database vouches for the ledger: no trusted key was given, or no
    signed checkpoint exists."""

    code, title = "lineage-not-anchored", "Lineage has no trust anchor"


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
        chain, anchored = check_key_chain(lines, anchor, where="database")
    except BundleInvalid as exc:
        raise LedgerTampered(exc.message, **exc.details) from exc
    assert anchored is not None  # noqa: S101 (the anchor is not empty here)
    return chain, anchored
