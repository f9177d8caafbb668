"""The re-identification vault: pseudonym -> original value, sealed with the dataset's vault
key (AES-GCM, a secret of its own, not the data key). Only an admin with a stated purpose
reads it, and every read is a lineage record."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session, select

from gateway.core import crypto
from gateway.core.context import GatewayContext
from gateway.core.errors import Forbidden, InvalidRequest, NotFound
from gateway.core.models import Role
from gateway.lineage import Action, Actor, recorder
from gateway.pseudonymisation.dataset_secrets import (
    SecretPurpose,
    dataset_secret,
    secret_version,
)
from gateway.pseudonymisation.policy import PseudonymField
from gateway.pseudonymisation.tables import VaultEntry
from gateway.pseudonymisation.upsert import insert_if_absent

MIN_PURPOSE_CHARS = 10


def vault_aad(dataset_id: str, field: str, pseudonym: str, version: int) -> bytes:
    return f"lpg/v1/vault/{dataset_id}/{field}/{pseudonym}/v{version}".encode()


def remember(
    ctx: GatewayContext,
    session: Session,
    *,
    dataset_id: str,
    field: PseudonymField,
    pseudonym: str,
    value: str,
    now: datetime,
) -> None:
    """Store pseudonym -> value once (idempotent; concurrent writers cannot duplicate it)."""
    stmt = select(VaultEntry.id).where(
        VaultEntry.dataset_id == dataset_id, VaultEntry.pseudonym == pseudonym
    )
    if session.exec(stmt).first() is not None:
        return
    version, key = dataset_secret(ctx.keys, session, dataset_id, SecretPurpose.VAULT, now=now)
    sealed = crypto.seal(
        value.encode("utf-8"),
        key=key,
        aad=vault_aad(dataset_id, field.value, pseudonym, version),
    )
    values = {
        "dataset_id": dataset_id,
        "field": field.value,
        "pseudonym": pseudonym,
        "key_version": version,
        "sealed": sealed,
        "created_at": now,
    }
    insert_if_absent(session, VaultEntry, values)  # a concurrent writer may have stored it


@dataclass(frozen=True, slots=True)
class Disclosure:
    dataset_id: str
    pseudonym: str
    field: str
    value: str


def read_vault(
    ctx: GatewayContext,
    session: Session,
    *,
    dataset_id: str,
    pseudonym: str,
    purpose: str,
    role: Role,
    actor: Actor,
) -> Disclosure:
    """Disclose the original behind `pseudonym`, recording who asked and why."""
    if role is not Role.ADMIN:
        raise Forbidden("only the admin role may read the re-identification vault")
    stated = " ".join(purpose.split())
    if len(stated) < MIN_PURPOSE_CHARS:
        raise InvalidRequest(
            f"state the purpose of this re-identification (at least {MIN_PURPOSE_CHARS} "
            "characters), e.g. 'erasure request 2026-014'",
        )
    entry = session.exec(
        select(VaultEntry).where(
            VaultEntry.dataset_id == dataset_id, VaultEntry.pseudonym == pseudonym
        )
    ).first()
    if entry is None:
        raise NotFound("no vault entry for this pseudonym in this dataset", pseudonym=pseudonym)
    key = secret_version(ctx.keys, session, dataset_id, SecretPurpose.VAULT, entry.key_version)
    value = crypto.unseal(
        entry.sealed,
        key=key,
        aad=vault_aad(dataset_id, entry.field, pseudonym, entry.key_version),
    ).decode("utf-8")
    recorder(ctx, session, actor).record(
        Action.VAULT_READ,
        entity=pseudonym,
        dataset=dataset_id,
        parameters={"purpose": stated, "field": entry.field, "role": role.value},
    )
    return Disclosure(dataset_id, pseudonym, entry.field, value)
