"""API keys: random secrets shown once, stored as keyed hashes, with roles, scope and expiry."""

from __future__ import annotations

import hmac
import json
import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session, col, select

from gateway.core import crypto
from gateway.core.clock import as_utc
from gateway.core.errors import Forbidden, NotAuthenticated, NotFound
from gateway.core.models import ApiKey, Role
from gateway.lineage import Action, Actor, recorder_at

TOKEN_PREFIX = "lpg"  # noqa: S105 (a public prefix, not a secret)


@dataclass(frozen=True, slots=True)
class Principal:
    """The authenticated caller of a request."""

    key_id: str
    role: Role
    dataset_scope: tuple[str, ...] | None
    expires_at: datetime | None = None

    @property
    def actor(self) -> Actor:
        return Actor("api-key", self.key_id)

    def require_role(self, *roles: Role) -> None:
        if self.role not in roles:
            raise Forbidden(
                f"this endpoint needs one of the roles {', '.join(r.value for r in roles)}; "
                f"the key has role {self.role.value}",
                required=[r.value for r in roles],
            )

    def require_dataset(self, dataset_id: str) -> None:
        if self.dataset_scope is not None and dataset_id not in self.dataset_scope:
            # same answer as a missing dataset: a key must not learn which datasets exist
            raise NotFound("dataset not found", dataset_id=dataset_id)


def _hash(secret: str, *, pepper: bytes) -> str:
    return crypto.keyed_digest(secret.encode(), key=pepper)


def grant_seal(row: ApiKey, *, pepper: bytes) -> str:
    """A keyed MAC over what the key may do (role, scope, expiry, revocation): someone who can
    write the database but not read the master key cannot widen or revive a key."""
    fields = {
        "id": row.id,
        "role": Role(row.role).value,
        "scope": sorted(row.dataset_scope) if row.dataset_scope is not None else None,
        "expires_at": as_utc(row.expires_at).isoformat() if row.expires_at else None,
        "revoked_at": as_utc(row.revoked_at).isoformat() if row.revoked_at else None,
    }
    message = b"api-key-grant\x00" + json.dumps(fields, sort_keys=True).encode()
    return crypto.keyed_digest(message, key=pepper)


def create_api_key(
    session: Session,
    *,
    role: Role,
    label: str,
    dataset_scope: list[str] | None,
    expires_at: datetime | None,
    pepper: bytes,
    actor: Actor,
    now: datetime,
    region: str,
) -> tuple[ApiKey, str]:
    """Create a key; the returned token is the only time the secret exists in clear."""
    key_id = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    row = ApiKey(
        id=key_id,
        secret_hash=_hash(secret, pepper=pepper),
        role=role,
        label=label,
        dataset_scope=dataset_scope,
        created_at=now,
        expires_at=expires_at,
    )
    row.seal = grant_seal(row, pepper=pepper)
    session.add(row)
    session.flush()
    recorder_at(session, actor=actor, region=region, now=now).record(
        Action.API_KEY_CREATED,
        entity=key_id,
        parameters={"role": role.value, "scoped": dataset_scope is not None},
    )
    return row, f"{TOKEN_PREFIX}_{key_id}_{secret}"


def authenticate(session: Session, token: str, *, pepper: bytes, now: datetime) -> Principal:
    parts = token.split("_", 2)
    if len(parts) != 3 or parts[0] != TOKEN_PREFIX:
        raise NotAuthenticated("malformed API key; expected lpg_<id>_<secret>")
    row = session.get(ApiKey, parts[1])
    if row is None or not hmac.compare_digest(row.secret_hash, _hash(parts[2], pepper=pepper)):
        raise NotAuthenticated("unknown API key")
    if row.seal is None or not hmac.compare_digest(row.seal, grant_seal(row, pepper=pepper)):
        raise NotAuthenticated(
            "this API key's record was changed outside the gateway, or predates sealed keys "
            "(`privacy-gateway api-keys seal` after checking them): create a new key"
        )
    if row.revoked_at is not None:
        raise NotAuthenticated("this API key was revoked")
    if row.expires_at is not None and as_utc(row.expires_at) <= now:
        raise NotAuthenticated("this API key has expired")
    scope = tuple(row.dataset_scope) if row.dataset_scope is not None else None
    expires = as_utc(row.expires_at) if row.expires_at is not None else None
    return Principal(key_id=row.id, role=Role(row.role), dataset_scope=scope, expires_at=expires)


def list_api_keys(session: Session) -> list[ApiKey]:
    return list(session.exec(select(ApiKey).order_by(col(ApiKey.created_at))).all())


def revoke_api_key(
    session: Session, key_id: str, *, actor: Actor, now: datetime, region: str, pepper: bytes
) -> ApiKey:
    row = session.get(ApiKey, key_id)
    if row is None:
        raise NotFound("no such API key", key_id=key_id)
    if row.revoked_at is None:
        row.revoked_at = now
        row.seal = grant_seal(row, pepper=pepper)
        session.add(row)
        recorder_at(session, actor=actor, region=region, now=now).record(
            Action.API_KEY_REVOKED, entity=key_id
        )
    return row


def seal_unsealed_keys(session: Session, *, pepper: bytes) -> list[str]:
    """Seal keys created before sealing existed (the operator vouches for their rows)."""
    rows = session.exec(select(ApiKey).where(col(ApiKey.seal).is_(None))).all()
    for row in rows:
        row.seal = grant_seal(row, pepper=pepper)
        session.add(row)
    return [row.id for row in rows]
