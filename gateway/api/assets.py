from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, UploadFile
from fastapi.responses import JSONResponse

from gateway.authz import DatasetFrom, Grant, authority
from gateway.datasets import get_dataset
from gateway.deps import Context, DbSession, Workers
from gateway.errors import InvalidRequest, NotFound, RejectedInput
from gateway.ingest import IngestOutcome, Upload, ingest_upload
from gateway.models import Asset, Role

router = APIRouter(tags=["assets"])
Uploading = Annotated[
    Grant, authority(Role.ADMIN, Role.INGEST, scope=DatasetFrom.path("dataset_ref"))
]
AssetReader = Annotated[
    Grant, authority(Role.ADMIN, Role.INGEST, Role.COMPLIANCE, scope=DatasetFrom.asset("asset_id"))
]


@router.post("/v1/datasets/{dataset_ref}/assets")
async def upload_assets(
    dataset_ref: str,  # noqa: ARG001 (resolved and checked by the route's authority)
    ctx: Context,
    session: DbSession,
    key: Uploading,
    workers: Workers,
    files: Annotated[list[UploadFile], File(description="one or more images")],
    metadata: Annotated[
        str | None,
        Form(description="JSON list aligned with files: {subject_id, uploader, capture_time}"),
    ] = None,
) -> JSONResponse:
    dataset = get_dataset(session, key.dataset_id)
    per_file = _parse_metadata(metadata, len(files))
    outcomes: list[IngestOutcome] = []
    for upload_file, meta in zip(files, per_file, strict=True):
        data = await upload_file.read(ctx.settings.max_upload_bytes + 1)
        upload = Upload(filename=upload_file.filename or "", data=data, **meta)
        outcomes.append(ingest_upload(session, ctx, dataset, upload, actor=key.actor))
    session.commit()  # the workers must see the new jobs
    workers.wake()
    return _respond(outcomes)


def _parse_metadata(raw: str | None, count: int) -> list[dict[str, Any]]:
    if raw is None:
        return [{} for _ in range(count)]
    try:
        items = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise InvalidRequest("metadata is not valid JSON") from exc
    if not isinstance(items, list) or len(items) != count:
        raise InvalidRequest("metadata must be a JSON list with one object per file")
    parsed = []
    for item in items:
        if not isinstance(item, dict) or set(item) - {"subject_id", "uploader", "capture_time"}:
            raise InvalidRequest("metadata entries may hold subject_id, uploader, capture_time")
        capture = item.get("capture_time")
        try:
            when = datetime.fromisoformat(capture) if capture else None
        except ValueError as exc:
            raise InvalidRequest("capture_time must be ISO 8601", value=capture) from exc
        parsed.append(
            {
                "subject_id": item.get("subject_id"),
                "uploader": item.get("uploader"),
                "capture_time": when,
            }
        )
    return parsed


def _outcome_view(o: IngestOutcome) -> dict[str, Any]:
    view: dict[str, Any] = {
        "file": o.filename,
        "asset_id": o.asset_id,
        "state": o.state.value,
        "duplicate": o.duplicate,
    }
    if o.error is not None:
        view["problem"] = RejectedInput(o.error["message"], reason=o.error["code"]).problem()
    return view


def _respond(outcomes: list[IngestOutcome]) -> JSONResponse:
    views = [_outcome_view(o) for o in outcomes]
    rejected = [o for o in outcomes if o.error is not None]
    if len(outcomes) == 1 and rejected:
        problem = views[0]["problem"] | {
            "asset_id": outcomes[0].asset_id,
            "duplicate": outcomes[0].duplicate,
        }
        return JSONResponse(problem, status_code=422, media_type="application/problem+json")
    status = 207 if rejected else 201
    return JSONResponse({"results": views}, status_code=status)


@router.get("/v1/assets/{asset_id}")
def get_asset(asset_id: str, session: DbSession, key: AssetReader) -> dict[str, Any]:
    asset = session.get(Asset, asset_id)
    if asset is None or asset.dataset_id != key.dataset_id:
        raise NotFound("no such asset", asset_id=asset_id)
    return {
        "id": asset.id,
        "dataset_id": asset.dataset_id,
        "state": asset.state,
        "reasons": asset.reasons,
        "format": asset.source_format,
        "width": asset.width,
        "height": asset.height,
        "bytes": asset.byte_size,
        "redacted_sha256": asset.redacted_sha256,
        "created_at": asset.created_at.isoformat(),
        "updated_at": asset.updated_at.isoformat(),
    }
