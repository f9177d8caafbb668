"""A dataset's long-lived secrets, wrapped by the master key, created with the dataset.

The dataset key (`gateway.core.keys`) rotates and encrypts data; these do not rotate, because the
values they key must stay stable for the dataset's life: pseudonyms (joins, erasure requests),
keyed content digests (duplicate detection) and the vault key. Crypto-shredding nulls them.
"""

from __future__ import annotations

import os
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING

from sqlmodel import Session, col, select

from gateway.core import crypto
from gateway.core.errors import KeyUnavailable, NotFound
from gateway.core.keys import KeyProvider

if TYPE_CHECKING:
    from gateway.core.context import GatewayContext
from gateway.core.models import DatasetKey
from gateway.pseudonymisation.tables import DatasetSecret
from gateway.pseudonymisation.upsert import insert_if_absent


class SecretPurpose(StrEnum):
    PSEUDONYM = "pseudonym"
    CONTENT_DIGEST = "keyed-digest"
    VAULT = "vault"


def dataset_secret_aad(dataset_id: str, purpose: str, version: int) -> bytes:
    return f"lpg/v1/dataset-secret/{dataset_id}/{purpose}/v{version}".encode()


def dataset_secret(
    keys: KeyProvider,
    session: Session,
    dataset_id: str,
    purpose: SecretPurpose,
    *,
    now: datetime,
) -> tuple[int, bytes]:
    """(version, secret) of the dataset's current secret for `purpose`, created on first use.

    Refuses (KeyUnavailable) once the dataset was shredded: a new secret would silently start
    a second, unlinkable set of pseudonyms.
    """
    row = _latest(session, dataset_id, purpose)
    if row is None:
        row = _create(keys, session, dataset_id, purpose, now=now)
    if row.wrapped is None:
        raise KeyUnavailable(
            "the dataset's secrets were crypto-shredded", dataset_id=dataset_id, purpose=purpose
        )
    secret = keys.unwrap(
        row.wrapped,
        aad=dataset_secret_aad(dataset_id, purpose, row.version),
        master_key_id=row.master_key_id,
    )
    return row.version, secret


def content_digest_key(ctx: GatewayContext, session: Session, dataset_id: str) -> bytes:
    """The HMAC key of the dataset's keyed content digests (stable across key rotation)."""
    now = ctx.clock()
    _, key = dataset_secret(ctx.keys, session, dataset_id, SecretPurpose.CONTENT_DIGEST, now=now)
    return key


def secret_version(
    keys: KeyProvider, session: Session, dataset_id: str, purpose: SecretPurpose, version: int
) -> bytes:
    """One specific version (vault entries name the version that sealed them)."""
    row = session.exec(
        select(DatasetSecret).where(
            DatasetSecret.dataset_id == dataset_id,
            DatasetSecret.purpose == purpose.value,
            DatasetSecret.version == version,
        )
    ).first()
    if row is None or row.wrapped is None:
        raise KeyUnavailable(
            "the dataset's secret does not exist or was crypto-shredded",
            dataset_id=dataset_id,
            purpose=purpose.value,
            version=version,
        )
    return keys.unwrap(
        row.wrapped,
        aad=dataset_secret_aad(dataset_id, purpose, version),
        master_key_id=row.master_key_id,
    )


def create_dataset_secrets(
    keys: KeyProvider, session: Session, dataset_id: str, *, now: datetime
) -> None:
    for purpose in SecretPurpose:
        if _latest(session, dataset_id, purpose) is None:
            _create(keys, session, dataset_id, purpose, now=now)


def _latest(session: Session, dataset_id: str, purpose: SecretPurpose) -> DatasetSecret | None:
    return session.exec(
        select(DatasetSecret)
        .where(DatasetSecret.dataset_id == dataset_id, DatasetSecret.purpose == purpose.value)
        .order_by(col(DatasetSecret.version).desc())
    ).first()


def _create(
    keys: KeyProvider,
    session: Session,
    dataset_id: str,
    purpose: SecretPurpose,
    *,
    now: datetime,
) -> DatasetSecret:
    key_rows = session.exec(select(DatasetKey).where(DatasetKey.dataset_id == dataset_id)).all()
    if not key_rows:
        raise NotFound("no such dataset (it has no keys)", dataset_id=dataset_id)
    if all(r.wrapped is None for r in key_rows):
        raise KeyUnavailable("the dataset was crypto-shredded", dataset_id=dataset_id)
    wrapping = keys.data_master
    wrapped = wrapping.wrap(
        os.urandom(crypto.KEY_BYTES), aad=dataset_secret_aad(dataset_id, purpose, 1)
    )
    values = {
        "dataset_id": dataset_id,
        "purpose": purpose.value,
        "version": 1,
        "master_key_id": wrapping.key_id,
        "wrapped": wrapped,
        "created_at": now,
    }
    insert_if_absent(session, DatasetSecret, values)  # another writer may have won the race
    found = _latest(session, dataset_id, purpose)
    if found is None:  # pragma: no cover (the insert or the winner's row is visible)
        raise KeyUnavailable("the dataset secret could not be created", dataset_id=dataset_id)
    return found
