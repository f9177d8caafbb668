"""Re-identification vault over HTTP: admins only, with a stated purpose, every read recorded."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from gateway.api.views import VaultEntry
from gateway.authz import DatasetFrom, Grant, authority
from gateway.core.models import Role
from gateway.deps import Context, DbSession
from gateway.pseudonymisation.vault import read_vault

router = APIRouter(tags=["vault"])
VaultReader = Annotated[Grant, authority(Role.ADMIN, scope=DatasetFrom.path("dataset_ref"))]


class VaultReadRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    pseudonym: str = Field(min_length=3, max_length=64)
    purpose: str = Field(min_length=10, max_length=500, description="recorded in lineage")


@router.post("/v1/datasets/{dataset_ref}/vault/read", response_model=VaultEntry)
def vault_read(
    dataset_ref: str,  # noqa: ARG001 (resolved and checked by the route's authority)
    body: VaultReadRequest,
    ctx: Context,
    session: DbSession,
    key: VaultReader,
) -> dict[str, str]:
    found = read_vault(
        ctx,
        session,
        dataset_id=key.dataset_id,
        pseudonym=body.pseudonym,
        purpose=body.purpose,
        role=key.role,
        actor=key.actor,
    )
    return {"pseudonym": found.pseudonym, "field": found.field, "value": found.value}
