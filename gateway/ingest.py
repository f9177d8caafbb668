"""Accept uploaded files into a dataset: validate first, store encrypted, record, enqueue.

Idempotent by a keyed content digest (HMAC with the dataset's key): the same bytes uploaded
twice to one dataset give the same asset, and nothing is stored twice.
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlmodel import Session, select

from gateway.core import crypto
from gateway.core.context import GatewayContext
from gateway.core.keys import DatasetKeyMaterial, KeyPurpose, asset_aad
from gateway.core.models import Asset, AssetState, Dataset
from gateway.core.storage import located_key, original_key, put_cleared
from gateway.jobs import queue_redaction
from gateway.lineage import Action, Actor, recorder
from gateway.policy.enforcement import EnforcementPoint, enforce_residency, storage_region
from gateway.pseudonymisation.dataset_secrets import content_digest_key
from gateway.pseudonymisation.facts import facts_json
from gateway.pseudonymisation.task_meta import remember_identifiers
from redaction.errors import InputError
from redaction.io import decode_image
from redaction.policy import Limits

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True, slots=True)
class Upload:
    filename: str
    data: bytes
    subject_id: str | None = None
    uploader: str | None = None
    capture_time: datetime | None = None


@dataclass(frozen=True, slots=True)
class IngestOutcome:
    filename: str
    asset_id: str
    state: AssetState
    duplicate: bool
    error: dict[str, Any] | None = None


def check_file_name(name: str) -> str | None:
    """Return why a submitted file name is unacceptable, or None. Names are metadata only,
    never paths; still, traversal and control characters are refused outright."""
    if not name or len(name) > 1024:
        return "the file name is empty or longer than 1024 characters"
    if _CONTROL.search(name) or "\\" in name:
        return "the file name contains control characters or backslashes"
    if name.startswith("/") or any(part in ("..", ".") for part in name.split("/")):
        return "the file name must be a relative path without '.' or '..' segments"
    return None


@dataclass(frozen=True, slots=True)
class CheckedUpload:
    """An upload once validated (CPU only, no database): its shape, or why it is refused."""

    upload: Upload
    shape: tuple[str, int, int] | None  # (format, width, height) once oriented
    error: dict[str, Any] | None
    exif: dict[str, Any] | None  # facts read from the original before re-encoding


def check_upload(ctx: GatewayContext, upload: Upload) -> CheckedUpload:
    """Decode and validate, outside any transaction (a 49 Mpx image takes seconds: holding
    the database's write lock, or the event loop, meanwhile would stall everyone else)."""
    checked = _validate(upload, ctx)
    if isinstance(checked, dict):
        return CheckedUpload(upload, None, checked, None)
    return CheckedUpload(upload, checked, None, facts_json(upload.data))


def ingest_upload(
    session: Session, ctx: GatewayContext, dataset: Dataset, upload: Upload, *, actor: Actor
) -> IngestOutcome:
    """Validate, store and record one file. Never raises for bad input: it returns a
    rejected outcome, recorded on a rejected asset, so good files beside it are kept."""
    return record_upload(session, ctx, dataset, check_upload(ctx, upload), actor=actor)


def record_upload(
    session: Session,
    ctx: GatewayContext,
    dataset: Dataset,
    checked: CheckedUpload,
    *,
    actor: Actor,
) -> IngestOutcome:
    """Store and record a checked upload in the caller's transaction. The same bytes again
    give the same asset; if it was refused, the refusal's reason again."""
    upload = checked.upload
    key = ctx.keys.dataset_key(session, dataset.id)
    digest = crypto.keyed_digest(upload.data, key=content_digest_key(ctx, session, dataset.id))
    existing = session.exec(
        select(Asset).where(Asset.dataset_id == dataset.id, Asset.content_digest == digest)
    ).first()
    if existing is not None:
        state = AssetState(existing.state)
        rejected = state is AssetState.REJECTED and existing.reasons
        error = existing.reasons[0] if rejected else None
        return IngestOutcome(upload.filename, existing.id, state, True, error)
    asset = _new_asset(dataset.id, digest, upload, key, now=ctx.clock(), exif=checked.exif)
    enforce_residency(
        ctx,
        session,
        point=EnforcementPoint.INGEST,
        dataset_id=dataset.id,
        target_region=ctx.settings.region,
        actor=actor,
        entity_type="asset",
        entity_id=asset.id,
    )
    if checked.error is not None or checked.shape is None:
        error = checked.error or {"code": "not-checked", "message": "the file was not checked"}
        return _record_rejection(session, ctx, asset, upload, error, actor=actor)
    asset.source_format, asset.width, asset.height = checked.shape
    return _record_acceptance(session, ctx, asset, upload, key, actor=actor)


def _validate(upload: Upload, ctx: GatewayContext) -> tuple[str, int, int] | dict[str, Any]:
    """The image's (format, width, height) once oriented, or the reason it was refused."""
    bad_name = check_file_name(upload.filename)
    if bad_name is not None:
        return {"code": "invalid-file-name", "message": bad_name}
    limits = Limits(max_bytes=ctx.settings.max_upload_bytes, max_pixels=ctx.settings.max_pixels)
    try:
        decoded = decode_image(upload.data, limits=limits)
    except InputError as exc:
        return {"code": exc.code, "message": exc.message}
    return decoded.source_format.value, decoded.width, decoded.height


def _new_asset(
    dataset_id: str,
    digest: str,
    upload: Upload,
    key: DatasetKeyMaterial,
    *,
    now: datetime,
    exif: dict[str, Any] | None,
) -> Asset:
    asset_id = str(uuid.uuid4())
    private = json.dumps(
        {
            "file_name": upload.filename,
            "subject_id": upload.subject_id,
            "uploader": upload.uploader,
            "exif": exif,  # facts read from the original before its pixels are re-encoded
            # the exact capture time is sealed too; tasks get it coarsened per policy
            "capture_time": upload.capture_time.isoformat() if upload.capture_time else None,
        }
    ).encode()
    return Asset(
        id=asset_id,
        dataset_id=dataset_id,
        state=AssetState.RECEIVED,
        content_digest=digest,
        byte_size=len(upload.data),
        key_version=key.version,
        private_meta=crypto.seal(
            private, key=key.subkey(KeyPurpose.AT_REST), aad=private_meta_aad(asset_id, key)
        ),
        created_at=now,
        updated_at=now,
    )


def private_meta_aad(asset_id: str, key: DatasetKeyMaterial) -> bytes:
    return asset_aad("private-meta", asset_id, key)


def original_aad(asset_id: str, key: DatasetKeyMaterial) -> bytes:
    return asset_aad("original", asset_id, key)


def _record_rejection(
    session: Session,
    ctx: GatewayContext,
    asset: Asset,
    upload: Upload,
    error: dict[str, Any],
    *,
    actor: Actor,
) -> IngestOutcome:
    asset.state = AssetState.REJECTED
    asset.reasons = [error]
    _record_arrival(
        session,
        ctx,
        asset,
        action=Action.ASSET_REJECTED,
        actor=actor,
        parameters={"reasons": [error["code"]], "bytes": asset.byte_size},
    )
    return IngestOutcome(upload.filename, asset.id, AssetState.REJECTED, False, error)


def _record_acceptance(
    session: Session,
    ctx: GatewayContext,
    asset: Asset,
    upload: Upload,
    key: DatasetKeyMaterial,
    *,
    actor: Actor,
) -> IngestOutcome:
    region = storage_region(ctx)
    clearance = enforce_residency(
        ctx,
        session,
        point=EnforcementPoint.STORAGE_WRITE,
        dataset_id=asset.dataset_id,
        target_region=region,
        actor=actor,
        entity_type="asset",
        entity_id=asset.id,
    )
    asset.original_blob = located_key(
        ctx.store, original_key(asset.dataset_id, asset.id), region=region
    )
    sealed = crypto.seal(
        upload.data, key=key.subkey(KeyPurpose.AT_REST), aad=original_aad(asset.id, key)
    )
    put_cleared(ctx.store, asset.original_blob, sealed, clearance)
    remember_identifiers(ctx, session, asset)
    _record_arrival(
        session,
        ctx,
        asset,
        action=Action.ASSET_RECEIVED,
        actor=actor,
        parameters={
            "format": asset.source_format,
            "width": asset.width,
            "height": asset.height,
            "bytes": asset.byte_size,
            "key_version": key.version,
            "encryption": "AES-256-GCM",
        },
    )
    queue_redaction(ctx, session, asset.id, now=asset.created_at)
    return IngestOutcome(upload.filename, asset.id, AssetState.RECEIVED, False)


def _record_arrival(
    session: Session,
    ctx: GatewayContext,
    asset: Asset,
    *,
    action: Action,
    actor: Actor,
    parameters: dict[str, Any],
) -> None:
    """Insert the new asset row and its first lineage record, in the caller's transaction."""
    session.add(asset)
    session.flush()
    recorder(ctx, session, actor, now=asset.created_at).record(
        action,
        entity=asset.id,
        dataset=asset.dataset_id,
        inputs={"original_keyed_digest": asset.content_digest},
        parameters=parameters,
    )
