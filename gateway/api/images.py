"""Signed image URLs for annotators' browsers: the redacted rendition only, CORS for the
Label Studio editor's origin, no caching (every fetch re-checks the asset's state)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import Response

from gateway.api.views import binary
from gateway.authz import public
from gateway.core.models import MAX_BIGINT
from gateway.deps import Context, DbSession
from gateway.labelstudio.urls import ServedImage, resolve_image

router = APIRouter(tags=["images"])


@router.get(
    "/v1/images/{destination_id}/{asset_id}",
    dependencies=[public("a signed URL: the HMAC in `s` is the credential")],
    response_class=Response,
    responses=binary("image/jpeg", "image/png", "image/webp", description="the redacted image"),
)
def get_image(
    destination_id: str,
    asset_id: str,
    ctx: Context,
    session: DbSession,
    k: Annotated[int, Query(ge=1, le=MAX_BIGINT, description="dataset key version")],
    s: Annotated[str, Query(min_length=64, max_length=64, pattern="^[0-9a-f]+$")],
) -> Response:
    image = resolve_image(
        ctx, session, destination_id=destination_id, asset_id=asset_id, key_version=k, signature=s
    )
    return signed_image_response(image)


def signed_image_response(image: ServedImage) -> Response:
    """An image behind a signed URL: readable by the editor's origin only, never cached
    (every fetch re-checks the asset), never sniffed, no referrer."""
    return Response(
        content=image.data,
        media_type=image.media_type,
        headers={
            "Access-Control-Allow-Origin": image.allow_origin,
            "Vary": "Origin",
            "Cache-Control": "no-store",
            "Cross-Origin-Resource-Policy": "cross-origin",
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "no-referrer",
        },
    )
