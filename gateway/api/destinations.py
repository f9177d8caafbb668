"""Label Studio destinations (admin). Tokens go in and never come out."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from gateway.api.paging import PAGED, Paging, page
from gateway.api.views import DestinationView, JobId, SyncJobView, SyncView
from gateway.authz import DatasetFrom, Grant, authority
from gateway.core.db import transaction
from gateway.core.models import Role
from gateway.deps import Context, DbSession, Workers
from gateway.labelstudio.destinations import (
    DestinationSpec,
    destination_view,
    list_destinations,
    register_destination,
    remove_destination,
)
from gateway.labelstudio.sync import sync_dataset
from gateway.sync_jobs import enqueue_sync, sync_job, sync_job_view

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


DatasetAdmin = Annotated[Grant, authority(Role.ADMIN, scope=DatasetFrom.path("dataset_ref"))]


@router.post(
    "/v1/datasets/{dataset_ref}/sync",
    response_model=SyncView,
    responses={202: {"model": SyncJobView, "description": "background=true: the job, to poll"}},
)
def sync_to_destination(
    dataset_ref: str,  # noqa: ARG001 (resolved and checked by the route's authority)
    to: str,
    ctx: Context,
    key: DatasetAdmin,
    workers: Workers,
    background: bool = False,
) -> Any:
    """Sync the dataset's released assets to destination `to`; the answer lists every asset
    not sent with its reason (`skipped`) and every one that failed. `background=true`: 202
    at once with a job (run by a worker; retried if Label Studio is away) to poll."""
    if background:
        with transaction(ctx.engine) as session:
            job = enqueue_sync(
                ctx, session, dataset_id=key.dataset_id, destination_ref=to, actor=key.actor
            )
            view = sync_job_view(job)
        workers.wake()  # committed: a worker (or the broker dispatch) may take it now
        return JSONResponse(view, status_code=202)
    report = sync_dataset(ctx, dataset_ref=key.dataset_id, destination_ref=to, actor=key.actor)
    return report.view()


@router.get("/v1/datasets/{dataset_ref}/sync/{job_id}", response_model=SyncJobView)
def get_sync_job(
    dataset_ref: str,  # noqa: ARG001 (resolved and checked by the route's authority)
    job_id: JobId,
    session: DbSession,
    key: DatasetAdmin,
) -> dict[str, Any]:
    """A background sync's state, and its report once done."""
    return sync_job_view(sync_job(session, job_id, dataset_id=key.dataset_id))
