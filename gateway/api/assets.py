from __future__ import annotations

import json
from datetime import datetime
from functools import partial
from typing import Annotated, Any

import anyio.to_thread
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from starlette.datastructures import FormData, UploadFile

from gateway.api.views import AssetView, UploadResults
from gateway.authz import DatasetFrom, Grant, authority
from gateway.core.context import GatewayContext
from gateway.core.db import transaction
from gateway.core.errors import InvalidRequest, NotFound, RejectedInput
from gateway.core.models import Asset, Dataset, Role
from gateway.datasets import get_dataset
from gateway.deps import Context, DbSession, Workers
from gateway.ingest import IngestOutcome, Upload, check_upload, record_upload
from gateway.lineage import Actor
from gateway.offload import run_cpu_bound

router = APIRouter(tags=["assets"])
Uploading = Annotated[
    Grant, authority(Role.ADMIN, Role.INGEST, scope=DatasetFrom.path("dataset_ref"))
]
AssetReader = Annotated[
    Grant, authority(Role.ADMIN, Role.INGEST, Role.COMPLIANCE, scope=DatasetFrom.asset("asset_id"))
]


UPLOAD_FORM = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["files"],
                    "properties": {
                        "files": {
                            "type": "array",
                            "items": {"type": "string", "format": "binary"},
                            "description": "one or more images",
                        },
                        "metadata": {
                            "type": "string",
                            "description": "JSON list aligned with files: "
                            "{subject_id, uploader, capture_time}",
                        },
                    },
                }
            }
        },
    }
}
MAX_FILES_PER_REQUEST = 1000


@router.post(
    "/v1/datasets/{dataset_ref}/assets",
    openapi_extra=UPLOAD_FORM,
    status_code=201,
    response_model=UploadResults,
    responses={
        207: {"model": UploadResults, "description": "some files refused: see each `problem`"},
        422: {"description": "the one file sent was refused (problem+json)"},
    },
)
async def upload_assets(
    dataset_ref: str,  # noqa: ARG001 (resolved and checked by the route's authority)
    request: Request,
    ctx: Context,
    key: Uploading,
    workers: Workers,
) -> JSONResponse:
    """The key, its role and its dataset scope are checked (the route's authority) before the
    form is read (this handler reads the body, not FastAPI ahead of the dependencies). Each
    file is decoded and validated in a worker thread outside any transaction, then recorded in
    its own short transaction: neither the event loop nor the database's write lock waits on a
    decode."""
    dataset = await anyio.to_thread.run_sync(partial(_dataset, ctx, key.dataset_id))
    async with request.form(max_files=MAX_FILES_PER_REQUEST) as form:  # closes spooled files
        files, metadata = _form_fields(form)
        per_file = _parse_metadata(metadata, len(files))
        outcomes: list[IngestOutcome] = []
        for upload_file, meta in zip(files, per_file, strict=True):
            data = await upload_file.read(ctx.settings.max_upload_bytes + 1)
            upload = Upload(filename=upload_file.filename or "", data=data, **meta)
            ingest = partial(_ingest_one, ctx, dataset, upload, actor=key.actor)
            outcomes.append(await run_cpu_bound(request.app, ingest))
            workers.wake()  # committed: the workers may take its job now
    return _respond(outcomes)


def _dataset(ctx: GatewayContext, ref: str) -> Dataset:
    with transaction(ctx.engine) as session:
        return get_dataset(session, ref)


def _ingest_one(
    ctx: GatewayContext, dataset: Dataset, upload: Upload, *, actor: Actor
) -> IngestOutcome:
    checked = check_upload(ctx, upload)
    with transaction(ctx.engine) as session:
        return record_upload(session, ctx, dataset, checked, actor=actor)


def _form_fields(form: FormData) -> tuple[list[UploadFile], str | None]:
    files = form.getlist("files")
    if not files or not all(isinstance(f, UploadFile) for f in files):
        raise InvalidRequest("send one or more images as multipart form fields named 'files'")
    metadata = form.get("metadata")
    if metadata is not None and not isinstance(metadata, str):
        raise InvalidRequest("metadata must be a form field, not a file")
    return [f for f in files if isinstance(f, UploadFile)], metadata


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


@router.get("/v1/assets/{asset_id}", response_model=AssetView)
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
