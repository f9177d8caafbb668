from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Request, Response, status
from pydantic import BaseModel, ConfigDict, Field

from gateway.api.paging import PAGED, Paging, page
from gateway.api.views import ApiKeyView, NewApiKeyView
from gateway.apikeys import create_api_key, list_api_keys, revoke_api_key
from gateway.authz import DatasetFrom, Grant, authority
from gateway.core.models import ApiKey, Role
from gateway.deps import Context, DbSession

router = APIRouter(prefix="/v1/api-keys", tags=["api-keys"])
Minting = Annotated[Grant, authority(Role.ADMIN, scope=DatasetFrom.new_key())]
Listing = Annotated[Grant, authority(Role.ADMIN, scope=DatasetFrom.own)]
Revoking = Annotated[Grant, authority(Role.ADMIN, scope=DatasetFrom.api_key("key_id"))]


class ApiKeyRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    role: Role
    label: str = ""
    dataset_scope: list[str] | None = Field(
        None, min_length=1, description="dataset ids; null: every dataset (unscoped keys only)"
    )
    expires_at: datetime | None = None


def key_view(row: ApiKey) -> dict[str, Any]:
    return {
        "id": row.id,
        "role": row.role,
        "label": row.label,
        "dataset_scope": row.dataset_scope,
        "created_at": row.created_at.isoformat(),
        "expires_at": row.expires_at.isoformat() if row.expires_at else None,
        "revoked_at": row.revoked_at.isoformat() if row.revoked_at else None,
    }


@router.post("", status_code=status.HTTP_201_CREATED, response_model=NewApiKeyView)
def post_key(body: ApiKeyRequest, ctx: Context, session: DbSession, key: Minting) -> dict[str, Any]:
    """Create a key no broader than the caller's (scope, expiry); the token is shown once."""
    row, token = create_api_key(
        session,
        role=body.role,
        label=body.label,
        dataset_scope=body.dataset_scope,
        expires_at=body.expires_at,
        pepper=ctx.keys.api_key_pepper(),
        actor=key.actor,
        now=ctx.clock(),
        region=ctx.settings.region,
    )
    return key_view(row) | {"token": token}


@router.get("", response_model=list[ApiKeyView], responses=PAGED)
def get_keys(
    session: DbSession, key: Listing, paging: Paging, request: Request, response: Response
) -> list[dict[str, Any]]:
    """The keys inside the caller's scope (every key for an unscoped admin), oldest first."""
    rows = [row for row in list_api_keys(session) if key.sees_key(row.dataset_scope)]
    return [key_view(row) for row in page(rows, paging, request, response)]


@router.delete("/{key_id}", response_model=ApiKeyView)
def delete_key(key_id: str, ctx: Context, session: DbSession, key: Revoking) -> dict[str, Any]:
    row = revoke_api_key(
        session,
        key_id,
        actor=key.actor,
        now=ctx.clock(),
        region=ctx.settings.region,
        pepper=ctx.keys.api_key_pepper(),
    )
    return key_view(row)
