"""Label Studio destinations (admin). Tokens go in and never come out."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Request, Response

from gateway.api.paging import PAGED, Paging, page
from gateway.api.views import DestinationView, SyncView
from gateway.authz import DatasetFrom, Grant, authority
from gateway.deps import Context, DbSession
from gateway.labelstudio.destinations import (
    DestinationSpec,
    destination_view,
    list_destinations,
    register_destination,
    remove_destination,
)
from gateway.models import Role

router = APIRouter(tags=["destinations"])
# destinations serve every dataset: global settings, unscoped admin keys only
Admin = Annotated[Grant, authority(Role.ADMIN, scope=DatasetFrom.global_)]


@router.post("/v1/destinations", status_code=201, response_model=DestinationView)
def create_destination(
    spec: DestinationSpec, ctx: Context, session: DbSession, key: Admin
) -> dict[str, Any]:
    return destination_view(register_destination(ctx, session, spec, actor=key.actor))


@router.get("/v1/destinations", response_model=list[DestinationView], responses=PAGED)
def get_destinations(
    session: DbSession, _: Admin, paging: Paging, request: Request, response: Response
) -> list[dict[str, Any]]:
    """Every destination, by name."""
    rows = list_destinations(session)
    return [destination_view(d) for d in page(rows, paging, request, response)]


@router.delete("/v1/destinations/{ref}", status_code=204)
def delete_destination(ref: str, ctx: Context, session: DbSession, key: Admin) -> None:
    remove_destination(ctx, session, ref, actor=key.actor)


@router.post("/v1/datasets/{dataset_ref}/sync", response_model=SyncView)
def sync_to_destination(
    dataset_ref: str,  # noqa: ARG001 (resolved and checked by the route's authority)
    to: str,
    ctx: Context,
    key: Annotated[Grant, authority(Role.ADMIN, scope=DatasetFrom.path("dataset_ref"))],
) -> dict[str, Any]:
    """Sync the dataset's released assets to destination `to`; the answer lists every asset
    not sent with its reason (`skipped`) and every one that failed."""
    from gateway.labelstudio.sync import sync_dataset

    report = sync_dataset(ctx, dataset_ref=key.dataset_id, destination_ref=to, actor=key.actor)
    return report.view()
