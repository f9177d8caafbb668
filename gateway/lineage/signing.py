"""Ed25519 lineage signing keys: stored wrapped by the master key, identified by key ids,
rotated with a hand-over the old key signs; detached signatures over RFC 8785 JSON.

Verification (fingerprints, key ids, signatures, the rotation chain) is database-free and
lives in `gateway.lineage.format.keys`."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat
from sqlmodel import Session, col, select

from gateway.core.errors import KeyUnavailable
from gateway.lineage.actions import Action
from gateway.lineage.format.canonical import canonical_json
from gateway.lineage.format.keys import ALG, b64, handover_body, public_raw

# re-exported: the report signer and verifier (gateway.reports) import these from here
from gateway.lineage.format.keys import fingerprint as fingerprint
from gateway.lineage.format.keys import key_id_for as key_id_for
from gateway.lineage.format.keys import unb64 as unb64
from gateway.lineage.format.keys import verify_document as verify_document
from gateway.lineage.ledger import SYSTEM, Actor, read_head
from gateway.lineage.tables import LineageSigningKey
from gateway.lineage.writer import recorder

if TYPE_CHECKING:
    from gateway.core.context import GatewayContext
    from gateway.core.keys import KeyProvider, MasterKey


def signing_key_aad(key_id: str) -> bytes:
    """What a signing key's wrapping is bound to (its key id)."""
    return f"lpg/v1/lineage-signing-key/{key_id}".encode()


_aad = signing_key_aad


def active_key(session: Session) -> LineageSigningKey | None:
    stmt = (
        select(LineageSigningKey)
        .where(col(LineageSigningKey.retired_at).is_(None))
        .order_by(col(LineageSigningKey.created_at).desc())
    )
    return session.exec(stmt).first()


def all_keys(session: Session) -> list[LineageSigningKey]:
    """Every signing key, oldest first (the rotation chain)."""
    stmt = select(LineageSigningKey).order_by(col(LineageSigningKey.created_at))
    return list(session.exec(stmt).all())


def public_keys(session: Session) -> dict[str, bytes]:
    return {row.key_id: row.public_key for row in all_keys(session)}


def _new_key(master: MasterKey, *, now: datetime) -> tuple[LineageSigningKey, Ed25519PrivateKey]:
    private = Ed25519PrivateKey.generate()
    raw = public_raw(private.public_key())
    key_id = key_id_for(raw)
    seed = private.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
    row = LineageSigningKey(
        key_id=key_id,
        public_key=raw,
        fingerprint=fingerprint(raw),
        master_key_id=master.key_id,
        wrapped=master.wrap(seed, aad=_aad(key_id)),
        created_at=now,
    )
    return row, private


def _lock_keys(session: Session) -> None:
    """Key creation and rotation take the chain head lock: one active key, never two."""
    read_head(session, lock=True)


def ensure_signing_key(ctx: GatewayContext, session: Session) -> LineageSigningKey:
    """The active key; the first call creates the genesis key (the root of the rotation chain)."""
    row = active_key(session)
    if row is not None:
        return row
    _lock_keys(session)
    row = active_key(session)
    if row is not None:
        return row
    row, _ = _new_key(ctx.keys.master, now=ctx.clock())
    session.add(row)
    session.flush()
    _record_key_event(ctx, session, Action.LINEAGE_KEY_CREATED, row, SYSTEM)
    return row


def _private_key(keys: KeyProvider, row: LineageSigningKey) -> Ed25519PrivateKey:
    if row.wrapped is None:
        raise KeyUnavailable("the lineage signing key was retired", key_id=row.key_id)
    seed = keys.unwrap(row.wrapped, aad=_aad(row.key_id), master_key_id=row.master_key_id)
    return Ed25519PrivateKey.from_private_bytes(seed)


def sign_bytes(ctx: GatewayContext, session: Session, message: bytes) -> tuple[str, str]:
    """Sign with the active key; returns (key_id, base64 signature)."""
    row = ensure_signing_key(ctx, session)
    return row.key_id, b64(_private_key(ctx.keys, row).sign(message))


def sign_document(
    ctx: GatewayContext, session: Session, payload: Mapping[str, Any]
) -> dict[str, str]:
    """A detached signature envelope over the RFC 8785 canonical JSON of `payload`."""
    key_id, signature = sign_bytes(ctx, session, canonical_json(payload))
    return {"key_id": key_id, "alg": ALG, "signature": signature}


def handover_statement(
    old: LineageSigningKey, new: LineageSigningKey, *, now: datetime
) -> dict[str, Any]:
    return handover_body(
        old_key_id=old.key_id,
        old_fingerprint=old.fingerprint,
        new_public=new.public_key,
        time=now.isoformat(timespec="microseconds"),
    )


def rotate_signing_key(ctx: GatewayContext, session: Session, *, actor: Actor) -> LineageSigningKey:
    """Replace the active key: the old key signs the hand-over, the new one countersigns, the
    old private key is destroyed (its signatures stay verifiable with its public key)."""
    old = ensure_signing_key(ctx, session)
    _lock_keys(session)
    old_private = _private_key(ctx.keys, old)
    now = ctx.clock()
    new, new_private = _new_key(ctx.keys.master, now=now)
    statement = canonical_json(handover_statement(old, new, now=now))
    new.previous_key_id = old.key_id
    new.handover = statement.decode()
    new.handover_old_signature = b64(old_private.sign(statement))
    new.handover_new_signature = b64(new_private.sign(statement))
    old.retired_at, old.wrapped = now, None
    session.add(old)
    session.flush()
    session.add(new)
    session.flush()
    _record_key_event(ctx, session, Action.LINEAGE_KEY_ROTATED, new, actor)
    return new


def _record_key_event(
    ctx: GatewayContext, session: Session, action: Action, row: LineageSigningKey, actor: Actor
) -> None:
    recorder(ctx, session, actor, now=row.created_at).record(
        action,
        entity=row.key_id,
        parameters={
            "alg": ALG,
            "fingerprint": row.fingerprint,
            "previous_key_id": row.previous_key_id,
        },
    )


def rewrap_signing_keys(session: Session, *, old: MasterKey, new: MasterKey) -> int:
    """Re-wrap every live signing key under a new master key (master-key rotation)."""
    count = 0
    for row in all_keys(session):
        if row.wrapped is None or row.master_key_id == new.key_id:
            continue
        seed = old.unwrap(row.wrapped, aad=_aad(row.key_id))
        row.wrapped, row.master_key_id = new.wrap(seed, aad=_aad(row.key_id)), new.key_id
        session.add(row)
        count += 1
    session.flush()
    return count
