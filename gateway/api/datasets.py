from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Request, Response, status

from gateway.api.paging import PAGED, Paging, page
from gateway.api.views import DatasetView
from gateway.authz import DatasetFrom, Grant, authority
from gateway.core.models import Dataset, Role
from gateway.datasets import DatasetSpec, create_dataset, get_dataset, list_datasets
from gateway.deps import Context, DbSession

router = APIRouter(prefix="/v1/datasets", tags=["datasets"])
READERS = (Role.ADMIN, Role.COMPLIANCE, Role.INGEST)
Creating = Annotated[Grant, authority(Role.ADMIN, scope=DatasetFrom.global_)]
Listing = Annotated[Grant, authority(*READERS, scope=DatasetFrom.own)]
Reading = Annotated[Grant, authority(*READERS, scope=DatasetFrom.path("dataset_ref"))]


def dataset_view(d: Dataset) -> dict[str, Any]:
    return {
        "id": d.id,
        "name": d.name,
        "purpose": d.purpose,
        "controller": d.controller,
        "legal_basis": d.legal_basis,
        "data_subject_categories": d.data_subject_categories,
        "personal_data_categories": d.personal_data_categories,
        "ontology": d.ontology,
        "policy_version_id": d.policy_version_id,
        "created_at": d.created_at.isoformat() if d.created_at else None,
    }


@router.post("", status_code=status.HTTP_201_CREATED, response_model=DatasetView)
def post_dataset(
    spec: DatasetSpec, ctx: Context, session: DbSession, key: Creating
) -> dict[str, Any]:
    return dataset_view(create_dataset(session, ctx, spec, actor=key.actor))


@router.get("", response_model=list[DatasetView], responses=PAGED)
def get_datasets(
    session: DbSession, key: Listing, paging: Paging, request: Request, response: Response
) -> list[dict[str, Any]]:
    """The datasets in the caller's scope, by name."""
    rows = [d for d in list_datasets(session) if key.sees(d.id)]
    return [dataset_view(d) for d in page(rows, paging, request, response)]


@router.get("/{dataset_ref}", response_model=DatasetView)
def get_one(
    dataset_ref: str,  # noqa: ARG001 (resolved and checked by the route's authority)
    session: DbSession,
    key: Reading,
) -> dict[str, Any]:
    return dataset_view(get_dataset(session, key.dataset_id))
