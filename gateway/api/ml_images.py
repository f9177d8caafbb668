"""The ML backend's door into the gateway (`ml` role only): redacted renditions of released
assets, and the backend's lineage records of what it did with them."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr

from gateway.api.views import MLUseRecorded, binary
from gateway.authz import DatasetFrom, Grant, authority
from gateway.core.db import transaction
from gateway.core.models import Role
from gateway.deps import Context
from gateway.ml_images import record_ml_use, redacted_for_ml

router = APIRouter(prefix="/v1/ml", tags=["ml-backend"])
REGION_HEADER = "X-ML-Backend-Region"
Scalar = StrictInt | StrictStr | StrictBool
Value = Scalar | list[Scalar] | dict[str, Scalar]
MLKey = Annotated[Grant, authority(Role.ML, scope=DatasetFrom.asset("asset_id"))]


@router.get(
    "/assets/{asset_id}/redacted",
    response_class=Response,
    responses=binary("image/jpeg", "image/png", "image/webp", description="the redacted copy"),
)
def get_redacted(
    asset_id: str,
    ctx: Context,
    grant: MLKey,
    x_ml_backend_region: Annotated[str | None, Header(max_length=64)] = None,
) -> Response:
    """The redacted copy of a released asset in the key's scope; 404 for anything else."""
    # own transaction: the lineage record commits before the bytes leave
    with transaction(ctx.engine) as session:
        image = redacted_for_ml(
            ctx,
            session,
            principal=grant.principal,
            asset_id=asset_id,
            backend_region=x_ml_backend_region,
        )
    return Response(
        content=image.data,
        media_type=image.media_type,
        headers={
            "Cache-Control": "no-store",
            "X-Content-Type-Options": "nosniff",
            "X-Redacted-SHA256": image.sha256,
            "X-Gateway-Dataset-Id": image.dataset_id,
        },
    )


class MLUse(BaseModel):
    model_config = ConfigDict(extra="forbid")
    action: str = Field(max_length=40)
    redacted_sha256: str = Field(pattern="^[0-9a-f]{64}$")
    outputs: dict[str, Value] = Field(default_factory=dict, max_length=32)
    parameters: dict[str, Value] = Field(default_factory=dict, max_length=32)


@router.post("/assets/{asset_id}/uses", status_code=201, response_model=MLUseRecorded)
def post_use(
    asset_id: str,
    body: MLUse,
    ctx: Context,
    grant: MLKey,
    x_ml_backend_region: Annotated[str | None, Header(max_length=64)] = None,
) -> dict[str, str]:
    """Record a prediction, assist or calibration the backend made from a served image."""
    with transaction(ctx.engine) as session:
        record_id = record_ml_use(
            ctx,
            session,
            principal=grant.principal,
            asset_id=asset_id,
            backend_region=x_ml_backend_region,
            action=body.action,
            redacted_sha256=body.redacted_sha256,
            outputs=dict(body.outputs),
            parameters=dict(body.parameters),
        )
    return {"record_id": record_id}
