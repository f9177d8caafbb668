"""Label Studio destinations: where a dataset's tasks may go, and with which credentials.

The access token and the per-destination webhook secret are sealed together under the master
key (aad `lpg/v1/destination-token/{id}`, column `token_sealed`, `master_key_id`),
never logged, never returned. Registering a destination proves that it answers and that the
token works.
"""

from __future__ import annotations

import json
import secrets
import uuid
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator
from sqlmodel import Session, col, select

from gateway.core.context import GatewayContext
from gateway.core.db import get_by_id_or_name
from gateway.core.errors import Conflict, InvalidRequest
from gateway.core.models import AssetSync, Destination, SyncState
from gateway.labelstudio.client import LabelStudioClient, RetryPolicy
from gateway.labelstudio.tables import Annotation, LabelStudioProject
from gateway.lineage import Action, Actor, recorder
from gateway.outbound import AddressPolicy
from gateway.policy.catalogue import load_catalogue
from gateway.vocabulary import slug


class DestinationSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    url: str = Field(description="Label Studio base URL")
    token: SecretStr = Field(description="Label Studio access token (legacy token)")
    region: str = Field(description="region the Label Studio server runs in (catalogue id)")
    gateway_url: str = Field(description="this gateway's base URL as annotators' browsers see it")
    transfer_basis: str | None = Field(None, description="transfer basis the recipient declares")
    image_delivery: Literal["signed-url", "local-files"] = Field(
        "signed-url",
        description="signed gateway URLs (default), or Label Studio's local-files storage "
        "pointed at an export of the redacted copies",
    )
    local_files_root: str | None = Field(
        None,
        description="for local-files: the directory Label Studio serves as "
        "LOCAL_FILES_DOCUMENT_ROOT, as this gateway sees it (a shared volume)",
    )
    allow_local_addresses: bool = Field(
        False,
        description="an admin's opt-in: the URL may reach loopback, link-local or unspecified "
        "addresses (a Label Studio on this machine); metadata addresses stay refused",
    )

    @model_validator(mode="after")
    def _local_files_root(self) -> DestinationSpec:
        if self.image_delivery == "local-files":
            if not self.local_files_root or not PurePosixPath(self.local_files_root).is_absolute():
                raise ValueError("local-files delivery needs an absolute local_files_root")
        elif self.local_files_root is not None:
            raise ValueError("local_files_root is only for image_delivery local-files")
        return self

    @field_validator("name")
    @classmethod
    def _slug(cls, name: str) -> str:
        return slug(name)

    @field_validator("url", "gateway_url")
    @classmethod
    def _http_url(cls, url: str) -> str:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError("must be an http(s) URL")
        if parts.query or parts.fragment:
            raise ValueError("must not carry a query or fragment")
        return url.rstrip("/")


@dataclass(frozen=True, slots=True)
class DestinationSecrets:
    token: str
    webhook_secret: str

    def __repr__(self) -> str:  # never print secrets, not even in a traceback
        return "DestinationSecrets(<sealed>)"


def token_aad(destination_id: str) -> bytes:
    return f"lpg/v1/destination-token/{destination_id}".encode()


def seal_secrets(ctx: GatewayContext, destination_id: str, value: DestinationSecrets) -> bytes:
    body = json.dumps({"token": value.token, "webhook_secret": value.webhook_secret}).encode()
    return ctx.keys.master.wrap(body, aad=token_aad(destination_id))


def open_secrets(ctx: GatewayContext, destination: Destination) -> DestinationSecrets:
    key_id = destination.master_key_id or ctx.keys.master.key_id
    body = ctx.keys.unwrap(
        destination.token_sealed, aad=token_aad(destination.id), master_key_id=key_id
    )
    data = json.loads(body)
    return DestinationSecrets(token=data["token"], webhook_secret=data["webhook_secret"])


def connect(
    ctx: GatewayContext, destination: Destination, *, retry: RetryPolicy | None = None
) -> LabelStudioClient:
    return LabelStudioClient(
        destination.url,
        open_secrets(ctx, destination).token,
        policy=address_policy(destination.allow_local_addresses),
        retry=retry,
        region=destination.region,
    )


def address_policy(allow_local_addresses: bool) -> AddressPolicy:
    return AddressPolicy(allow_local_addresses=allow_local_addresses)


def probe(url: str, token: str, *, policy: AddressPolicy, retry: RetryPolicy | None = None) -> int:
    """Check the server answers /health and the token works; the token's user id."""
    client = LabelStudioClient(url, token, policy=policy, retry=retry)
    try:
        client.health()
        return client.whoami()
    finally:
        client.close()


def register_destination(
    ctx: GatewayContext,
    session: Session,
    spec: DestinationSpec,
    *,
    actor: Actor,
    retry: RetryPolicy | None = None,
) -> Destination:
    if spec.region not in load_catalogue().regions:
        raise InvalidRequest(f"unknown region {spec.region!r}", region=spec.region)
    if session.exec(select(Destination).where(Destination.name == spec.name)).first():
        raise Conflict(f"a destination named {spec.name!r} already exists", name=spec.name)
    policy = address_policy(spec.allow_local_addresses)
    probe(spec.url, spec.token.get_secret_value(), policy=policy, retry=retry)
    now = ctx.clock()
    destination_id = str(uuid.uuid4())
    sealed = seal_secrets(
        ctx,
        destination_id,
        DestinationSecrets(spec.token.get_secret_value(), secrets.token_urlsafe(32)),
    )
    destination = Destination(
        id=destination_id,
        name=spec.name,
        url=spec.url,
        region=spec.region,
        token_sealed=sealed,
        master_key_id=ctx.keys.master.key_id,
        gateway_url=spec.gateway_url,
        transfer_basis=spec.transfer_basis,
        project_mapping={},
        image_delivery=spec.image_delivery,
        local_files_root=spec.local_files_root,
        allow_local_addresses=spec.allow_local_addresses,
        created_at=now,
    )
    session.add(destination)
    session.flush()
    recorder(ctx, session, actor, now=now).record(
        Action.DESTINATION_REGISTERED,
        entity=destination_id,
        parameters={
            "target_region": spec.region,
            "transfer_basis": spec.transfer_basis or "",
            "master_key_id": ctx.keys.master.key_id,
            "image_delivery": spec.image_delivery,
            "allow_local_addresses": spec.allow_local_addresses,
        },
    )
    return destination


def get_destination(session: Session, ref: str) -> Destination:
    """Find a destination by id or by name."""
    return get_by_id_or_name(session, Destination, ref, what="destination")


def list_destinations(session: Session) -> list[Destination]:
    return list(session.exec(select(Destination).order_by(col(Destination.name))).all())


def destination_view(destination: Destination) -> dict[str, Any]:
    """What the API and CLI may show: never the token or the webhook secret."""
    return {
        "id": destination.id,
        "name": destination.name,
        "url": destination.url,
        "region": destination.region,
        "gateway_url": destination.gateway_url,
        "transfer_basis": destination.transfer_basis,
        "image_delivery": destination.image_delivery,
        "allow_local_addresses": destination.allow_local_addresses,
        "created_at": destination.created_at.isoformat(),
    }


def remove_destination(
    ctx: GatewayContext, session: Session, ref: str, *, actor: Actor
) -> Destination:
    """Forget a destination; refused while it still holds tasks (they hold personal data)."""
    destination = get_destination(session, ref)
    live = session.exec(
        select(AssetSync).where(
            AssetSync.destination_id == destination.id,
            col(AssetSync.state).in_([SyncState.SYNCED, SyncState.INTENT_RECORDED]),
        )
    ).first()
    if live is not None:
        raise Conflict(
            "the destination still holds tasks; remove them (retention/erasure) first",
            destination=destination.name,
        )
    if session.exec(select(Annotation).where(Annotation.destination_id == destination.id)).first():
        raise Conflict(
            "annotations from this destination are kept in the gateway and name it; "
            "it cannot be removed",
            destination=destination.name,
        )

    for row in session.exec(
        select(LabelStudioProject).where(LabelStudioProject.destination_id == destination.id)
    ).all():
        session.delete(row)
    for sync_row in session.exec(
        select(AssetSync).where(AssetSync.destination_id == destination.id)
    ).all():
        session.delete(sync_row)
    session.flush()
    session.delete(destination)
    recorder(ctx, session, actor).record(Action.DESTINATION_REMOVED, entity=destination.id)
    return destination
