from __future__ import annotations

from typing import Any

from fastapi import APIRouter, status

from gateway.datasets import DatasetSpec, create_dataset, get_dataset, list_datasets
from gateway.deps import Context, CurrentKey, DbSession
from gateway.models import Dataset, Role

router = APIRouter(prefix="/v1/datasets", tags=["datasets"])


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


@router.post("", status_code=status.HTTP_201_CREATED)
def post_dataset(
    spec: DatasetSpec, ctx: Context, session: DbSession, key: CurrentKey
) -> dict[str, Any]:
    key.require_role(Role.ADMIN)
    return dataset_view(create_dataset(session, ctx, spec, actor=key.actor))


@router.get("")
def get_datasets(session: DbSession, key: CurrentKey) -> list[dict[str, Any]]:
    key.require_role(Role.ADMIN, Role.COMPLIANCE, Role.INGEST)
    return [
        dataset_view(d)
        for d in list_datasets(session)
        if key.dataset_scope is None or d.id in key.dataset_scope
    ]


@router.get("/{dataset_ref}")
def get_one(dataset_ref: str, session: DbSession, key: CurrentKey) -> dict[str, Any]:
    key.require_role(Role.ADMIN, Role.COMPLIANCE, Role.INGEST)
    dataset = get_dataset(session, dataset_ref)
    key.require_dataset(dataset.id)
    return dataset_view(dataset)
