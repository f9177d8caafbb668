"""Signed checkpoints (RFC 9162-style signed tree heads) in the database: made, listed, and
checked against the records. Their body and its checks are `gateway.lineage.format.checkpoint`.

A checkpoint says: records 1..tree_size have Merkle root R and chain head H, signed by key K.
Verifying a million records is then a chain walk plus one signature per checkpoint.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import TYPE_CHECKING

from sqlmodel import Session, col, select

from gateway.core.errors import IntegrityFailure, NotFound
from gateway.core.models import LineageRecord
from gateway.lineage.format.canonical import GENESIS_HASH, canonical_json
from gateway.lineage.format.checkpoint import checkpoint_body

# re-exported: review sampling (gateway.review.queue) checks a draw's checkpoint with it
from gateway.lineage.format.checkpoint import verify_checkpoint as verify_checkpoint
from gateway.lineage.format.merkle import Frontier, leaf_hash
from gateway.lineage.ledger import current_frontier, read_head, sequence_pending
from gateway.lineage.signing import ensure_signing_key, public_keys, sign_bytes
from gateway.lineage.tables import LineageCheckpoint

if TYPE_CHECKING:
    from gateway.core.context import GatewayContext


def create_checkpoint(ctx: GatewayContext, session: Session) -> LineageCheckpoint:
    """Sequence what is pending, then sign the current tree head (idempotent per tree size)."""
    while sequence_pending(session):
        pass
    head_seq, head_hash = read_head(session, lock=True)
    existing = session.get(LineageCheckpoint, head_seq)
    if existing is not None:
        return existing
    frontier = current_frontier(session, head_seq)[0]
    root = frontier.root().hex()
    key = ensure_signing_key(ctx, session)
    now = ctx.clock()
    body = checkpoint_body(
        tree_size=head_seq, root_hash=root, chain_head=head_hash, time=now, key_id=key.key_id
    )
    message = canonical_json(body)
    key_id, signature = sign_bytes(ctx, session, message)
    row = LineageCheckpoint(
        tree_size=head_seq,
        root_hash=root,
        chain_head=head_hash,
        body=message.decode(),
        key_id=key_id,
        signature=signature,
        frontier=json.dumps([node.hex() for node in frontier.nodes]),
        created_at=now,
    )
    session.add(row)
    session.flush()
    return row


def checkpoint_if_due(
    ctx: GatewayContext, session: Session, *, every_records: int, every: timedelta
) -> LineageCheckpoint | None:
    """A checkpoint when `every_records` records or `every` time passed since the last one."""
    head_seq, _ = read_head(session, lock=False)
    last = latest_checkpoint(session)
    if head_seq == 0 or (last is not None and last.tree_size == head_seq):
        return None
    if last is None or head_seq - last.tree_size >= every_records:
        return create_checkpoint(ctx, session)
    now = ctx.clock()
    created = last.created_at
    if created.tzinfo is None:  # SQLite keeps no time zone; the gateway writes UTC
        created = created.replace(tzinfo=now.tzinfo)
    if now - created >= every:
        return create_checkpoint(ctx, session)
    return None


def latest_checkpoint(session: Session) -> LineageCheckpoint | None:
    stmt = select(LineageCheckpoint).order_by(col(LineageCheckpoint.tree_size).desc())
    return session.exec(stmt).first()


def list_checkpoints(session: Session, *, up_to: int | None = None) -> list[LineageCheckpoint]:
    stmt = select(LineageCheckpoint).order_by(col(LineageCheckpoint.tree_size))
    if up_to is not None:
        stmt = stmt.where(col(LineageCheckpoint.tree_size) <= up_to)
    return list(session.exec(stmt).all())


def leaf_hashes(session: Session, size: int) -> list[bytes]:
    rows = session.exec(
        select(LineageRecord.record_hash)
        .where(col(LineageRecord.seq) <= size)
        .order_by(col(LineageRecord.seq))
    )
    leaves = [leaf_hash(bytes.fromhex(h)) for h in rows]
    if len(leaves) != size:
        raise IntegrityFailure("records missing below the checkpoint", size=size, found=len(leaves))
    return leaves


def get_checkpoint(session: Session, tree_size: int | None) -> LineageCheckpoint:
    row = (
        latest_checkpoint(session)
        if tree_size is None
        else session.get(LineageCheckpoint, tree_size)
    )
    if row is None:
        raise NotFound(
            "no such lineage checkpoint: create one with `privacy-gateway lineage checkpoint`",
            tree_size=tree_size,
        )
    return row


def verify_stored_checkpoints(session: Session) -> int:
    """Every stored checkpoint: signature by its key, and root/head equal to the chain's."""
    keys = public_keys(session)
    cps = list_checkpoints(session)
    frontier, head, pos = Frontier(), GENESIS_HASH, 0
    for cp in cps:
        if cp.key_id not in keys:
            raise IntegrityFailure("checkpoint signed by an unknown key", tree_size=cp.tree_size)
        verify_checkpoint(cp.body, cp.signature, keys[cp.key_id])
        rows = session.exec(
            select(LineageRecord.record_hash)
            .where(col(LineageRecord.seq) > pos, col(LineageRecord.seq) <= cp.tree_size)
            .order_by(col(LineageRecord.seq))
        ).all()
        for digest in rows:
            frontier.append(leaf_hash(bytes.fromhex(digest)))
            head = digest
        pos = cp.tree_size
        body = json.loads(cp.body)
        if frontier.size != cp.tree_size or frontier.root().hex() != cp.root_hash:
            raise IntegrityFailure("checkpoint root does not match the records", tree_size=pos)
        if (
            body["root_hash"] != cp.root_hash
            or head not in (body["chain_head"], cp.chain_head)
            or body["chain_head"] != cp.chain_head
        ):
            raise IntegrityFailure("checkpoint disagrees with the chain head", tree_size=pos)
    return len(cps)
