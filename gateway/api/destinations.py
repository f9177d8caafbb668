"""Label Studio destinations (admin). Tokens go in and never come out."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from gateway.datasets import get_dataset
from gateway.db import transaction
from gateway.deps import Context, CurrentKey, DbSession
from gateway.labelstudio.destinations import (
    DestinationSpec,
    destination_view,
    list_destinations,
    register_destination,
    remove_destination,
)
from gateway.models import Role

router = APIRouter(tags=["destinations"])


@router.post("/v1/destinations", status_code=201)
def create_destination(
    spec: DestinationSpec, ctx: Context, session: DbSession, key: CurrentKey
) -> dict[str, Any]:
    key.require_role(Role.ADMIN)
    return destination_view(register_destination(ctx, session, spec, actor=key.actor))


@router.get("/v1/destinations")
def get_destinations(session: DbSession, key: CurrentKey) -> list[dict[str, Any]]:
    key.require_role(Role.ADMIN)
    return [destination_view(d) for d in list_destinations(session)]


@router.delete("/v1/destinations/{ref}", status_code=204)
def delete_destination(ref: str, ctx: Context, session: DbSession, key: CurrentKey) -> None:
    key.require_role(Role.ADMIN)
    remove_destination(ctx, session, ref, actor=key.actor)


@router.post("/v1/datasets/{dataset_ref}/sync")
def sync_to_destination(dataset_ref: str, to: str, ctx: Context, key: CurrentKey) -> dict[str, Any]:
    """Sync the dataset's released assets to destination `to`; the answer lists every asset
    not sent with its reason (`skipped`) and every one that failed."""
    from gateway.labelstudio.sync import sync_dataset

    key.require_role(Role.ADMIN)
    with transaction(ctx.engine) as session:  # the sync runs its own transactions after this
        key.require_dataset(get_dataset(session, dataset_ref).id)
    report = sync_dataset(ctx, dataset_ref=dataset_ref, destination_ref=to, actor=key.actor)
    return report.view()
