"""Governance reports over the API (compliance role): a dataset's report, and the record of
processing activities over every dataset."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Response

from gateway.authz import DatasetFrom, Grant, authority
from gateway.core.db import transaction
from gateway.core.models import Role
from gateway.datasets import get_dataset
from gateway.deps import Context
from gateway.reports.export import (
    ExportedReport,
    export_dataset_report,
    export_processing_activities,
)
from gateway.reports.render import MEDIA_TYPES, ReportFormat

router = APIRouter(tags=["reports"])
FormatQuery = Annotated[ReportFormat, Query(alias="format", description="json | html | pdf")]
FromQuery = Annotated[datetime | None, Query(alias="from", description="period start, ISO 8601")]
ToQuery = Annotated[datetime | None, Query(alias="to", description="period end, exclusive")]
DatasetReport = Annotated[Grant, authority(Role.COMPLIANCE, scope=DatasetFrom.path("dataset_ref"))]
# the record over every dataset needs a compliance key without dataset scope
EveryDataset = Annotated[Grant, authority(Role.COMPLIANCE, scope=DatasetFrom.global_)]
REPORT: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "the signed report: JSON (the signed source of truth), HTML or PDF",
        "content": {
            "application/json": {
                "schema": {"type": "object", "description": "gateway/reports/schema.json"}
            },
            "text/html": {"schema": {"type": "string"}},
            "application/pdf": {"schema": {"type": "string", "format": "binary"}},
        },
    }
}


def _utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _respond(exported: ExportedReport, name: str) -> Response:
    fmt = exported.fmt
    disposition = f'inline; filename="{name}.{fmt.value}"'
    headers = {"Content-Disposition": disposition}
    return Response(exported.body, media_type=MEDIA_TYPES[fmt], headers=headers)


@router.get("/v1/datasets/{dataset_ref}/report", response_class=Response, responses=REPORT)
def dataset_report(
    dataset_ref: str,  # noqa: ARG001 (resolved and checked by the route's authority)
    ctx: Context,
    key: DatasetReport,
    fmt: FormatQuery = ReportFormat.JSON,
    start: FromQuery = None,
    end: ToQuery = None,
) -> Response:
    """A signed governance report for one dataset (JSON is the signed source of truth)."""
    with transaction(ctx.engine) as session:
        dataset = get_dataset(session, key.dataset_id)
    exported = export_dataset_report(
        ctx, dataset.id, fmt, actor=key.actor, start=_utc(start), end=_utc(end)
    )
    return _respond(exported, f"report-{dataset.name}")


@router.get("/v1/reports/processing-activities", response_class=Response, responses=REPORT)
def processing_activities(
    ctx: Context,
    key: EveryDataset,
    fmt: FormatQuery = ReportFormat.JSON,
    start: FromQuery = None,
    end: ToQuery = None,
) -> Response:
    """GDPR Art. 30 record over every dataset: needs a compliance key without dataset scope."""
    exported = export_processing_activities(
        ctx, fmt, actor=key.actor, start=_utc(start), end=_utc(end)
    )
    return _respond(exported, "processing-activities")
