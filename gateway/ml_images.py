"""Redacted renditions for the ML backend: what `GET /v1/ml/assets/{id}/redacted` serves.

Only an `ml`-role key may ask, only for an asset in its dataset scope, only for an asset that
is released (whether or not its original is still stored), and only the redacted copy,
whose bytes must match the SHA-256 recorded when it was made. The calling backend declares its
region; the residency check at point `ml_backend` decides (a denial is recorded by the check
itself). Every served image is one `ml.image-served` lineage record, committed before the bytes
leave. Anything else is 404, the same answer as an unknown asset.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlmodel import Session

from gateway.apikeys import Principal
from gateway.core import crypto
from gateway.core.context import GatewayContext
from gateway.core.errors import IntegrityFailure, InvalidRequest, NotFound
from gateway.core.models import Asset, AssetState, Role
from gateway.core.storage import get_cleared
from gateway.lineage import Action, recorder_at
from gateway.lineage.actions import ML_USES
from gateway.policy.enforcement import EnforcementPoint, enforce_residency

REGION_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
MEDIA_TYPES = {"jpg": "image/jpeg", "jpeg": "image/jpeg", "png": "image/png", "webp": "image/webp"}


@dataclass(frozen=True, slots=True)
class RedactedRendition:
    asset_id: str
    dataset_id: str
    sha256: str
    media_type: str
    data: bytes


def redacted_for_ml(
    ctx: GatewayContext,
    session: Session,
    *,
    principal: Principal,
    asset_id: str,
    backend_region: str | None,
) -> RedactedRendition:
    """The asset's redacted bytes for an ML backend, or a typed error (nothing is served)."""
    principal.require_role(Role.ML)
    region = _declared_region(backend_region)
    asset = session.get(Asset, asset_id)
    if asset is None:
        raise NotFound("no such asset", asset_id=asset_id)
    principal.require_dataset(asset.dataset_id)  # out of scope: the same 404 as unknown
    blob, expected = servable_redacted(asset)
    clearance = enforce_residency(
        ctx,
        session,
        point=EnforcementPoint.ML_BACKEND,
        dataset_id=asset.dataset_id,
        target_region=region,
        actor=principal.actor,
        entity_type="asset",
        entity_id=asset.id,
    )
    data = get_cleared(
        ctx.store, blob, clearance, point=EnforcementPoint.ML_BACKEND, to_region=region
    )
    if not crypto.sha256_hex(data) == expected:
        raise IntegrityFailure(
            "the stored redacted copy does not match its recorded SHA-256; not served",
            asset_id=asset.id,
        )
    recorder_at(session, actor=principal.actor, region=region, now=ctx.clock()).record(
        Action.ML_IMAGE_SERVED,
        entity=asset.id,
        dataset=asset.dataset_id,
        inputs={"redacted_sha256": expected},
        outputs={"bytes": len(data)},
        parameters={"rendition": "redacted", "backend_region": region},
    )
    extension = blob.rsplit(".", 1)[-1].lower()
    return RedactedRendition(
        asset_id=asset.id,
        dataset_id=asset.dataset_id,
        sha256=expected,
        media_type=MEDIA_TYPES.get(extension, "application/octet-stream"),
        data=data,
    )


def _declared_region(value: str | None) -> str:
    if value is None or not value.strip():
        raise InvalidRequest(
            "declare the ML backend's region in the X-ML-Backend-Region header "
            "(the residency check needs it)"
        )
    region = value.strip()
    if not REGION_PATTERN.fullmatch(region):
        raise InvalidRequest("X-ML-Backend-Region is not a region name")
    return region


def servable_redacted(asset: Asset) -> tuple[str, str]:
    """(redacted blob key, its SHA-256) when the asset may be shown, else 404."""
    released = AssetState(asset.state) is AssetState.RELEASED  # with or without its original
    if not released or asset.redacted_blob is None or asset.redacted_sha256 is None:
        raise NotFound("no released redacted copy of this asset", asset_id=asset.id)
    return asset.redacted_blob, asset.redacted_sha256


def record_ml_use(
    ctx: GatewayContext,
    session: Session,
    *,
    principal: Principal,
    asset_id: str,
    backend_region: str | None,
    action: str,
    redacted_sha256: str,
    outputs: dict[str, object],
    parameters: dict[str, object],
) -> str:
    """The backend's own lineage record of using a served image (a prediction, an assist, a
    calibration). Only for an image this key may fetch, with the digest it was served with."""
    principal.require_role(Role.ML)
    region = _declared_region(backend_region)
    if action not in ML_USES:
        raise InvalidRequest(f"action must be one of {', '.join(sorted(ML_USES))}")
    asset = session.get(Asset, asset_id)
    if asset is None:
        raise NotFound("no such asset", asset_id=asset_id)
    principal.require_dataset(asset.dataset_id)
    if asset.redacted_sha256 != redacted_sha256:
        raise InvalidRequest("redacted_sha256 is not the digest of this asset's redacted copy")
    pending = recorder_at(session, actor=principal.actor, region=region, now=ctx.clock()).record(
        Action(action),
        entity=asset.id,
        dataset=asset.dataset_id,
        inputs={"redacted_sha256": redacted_sha256},
        outputs=outputs,
        parameters=parameters,
    )
    return pending.record_id
