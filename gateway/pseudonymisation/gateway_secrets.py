"""Gateway-wide secrets stored wrapped by the master key (they survive its rotation)."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from gateway import crypto
from gateway.clock import utc_now
from gateway.pseudonymisation.tables import GatewaySecret

if TYPE_CHECKING:
    from gateway.keys import KeyProvider


def gateway_secret_aad(purpose: str) -> bytes:
    return f"lpg/v1/gateway-secret/{purpose}".encode()


def gateway_secret(engine: Engine, keys: KeyProvider, *, purpose: str) -> bytes:
    """Read the secret for `purpose`, creating it on first use (race-safe: one insert wins)."""
    for _ in range(2):
        with Session(engine, expire_on_commit=False) as session:
            row = session.get(GatewaySecret, purpose)
            if row is not None:
                return keys.unwrap(
                    row.wrapped, aad=gateway_secret_aad(purpose), master_key_id=row.master_key_id
                )
            secret = os.urandom(crypto.KEY_BYTES)
            session.add(
                GatewaySecret(
                    purpose=purpose,
                    master_key_id=keys.master.key_id,
                    wrapped=keys.master.wrap(secret, aad=gateway_secret_aad(purpose)),
                    created_at=utc_now(),
                )
            )
            try:
                session.commit()
            except IntegrityError:
                session.rollback()
                continue
            return secret
    raise RuntimeError("could not read or create the gateway secret")  # pragma: no cover
