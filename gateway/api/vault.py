"""Re-identification vault over HTTP: admins only, with a stated purpose, every read recorded."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from gateway.datasets import get_dataset
from gateway.deps import Context, CurrentKey, DbSession
from gateway.models import Role
from gateway.pseudonymisation.vault import read_vault

router = APIRouter(tags=["vault"])


class VaultReadRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    pseudonym: str = Field(min_length=3, max_length=64)
    purpose: str = Field(min_length=10, max_length=500, description="recorded in lineage")


@router.post("/v1/datasets/{dataset_ref}/vault/read")
def vault_read(
    dataset_ref: str, body: VaultReadRequest, ctx: Context, session: DbSession, key: CurrentKey
) -> dict[str, str]:
    key.require_role(Role.ADMIN)
    dataset = get_dataset(session, dataset_ref)
    key.require_dataset(dataset.id)
    found = read_vault(
        ctx,
        session,
        dataset_id=dataset.id,
        pseudonym=body.pseudonym,
        purpose=body.purpose,
        role=key.role,
        actor=key.actor,
    )
    return {"pseudonym": found.pseudonym, "field": found.field, "value": found.value}
