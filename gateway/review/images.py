"""Signed URLs of the renditions a review task shows.

Like annotators' URLs (gateway.labelstudio.urls), a review URL names one destination and one
review item and carries an HMAC over both and the rendition's SHA-256, under a subkey of the
dataset key. It answers only while the item is open, on the destination that holds the
dataset's review project, while residency allows that destination's region: a quarantined
or flagged asset's redacted copy is shown to reviewers there and nowhere else. Never an
original: the only bytes served are the asset's redacted rendition or, for a leak-check
quarantine, the engine's candidate rendition (gateway.review.candidates), which is served
nowhere else."""

from __future__ import annotations

import hmac

from sqlmodel import Session, select

from gateway.core import crypto
from gateway.core.context import GatewayContext
from gateway.core.errors import GatewayError, NotFound
from gateway.core.keys import DatasetKeyMaterial
from gateway.core.models import Asset, AssetState, Destination
from gateway.core.storage import get_cleared
from gateway.labelstudio.urls import (
    GONE_STATES,
    MEDIA_TYPES,
    ServedImage,
    fetch_clearance,
    origin_of,
)
from gateway.policy.enforcement import EnforcementPoint
from gateway.review.candidates import candidate_image, candidate_of
from gateway.review.models import ReviewItem, ReviewProject


def _key(key: DatasetKeyMaterial) -> bytes:
    info = f"lpg/v1/dataset/{key.dataset_id}/v{key.version}/review-image-url".encode()
    return crypto.derive(key.secret, info=info)


def _signature(key: DatasetKeyMaterial, destination_id: str, item_id: str, sha: str) -> str:
    return crypto.keyed_digest(f"{destination_id}/{item_id}/{sha}".encode(), key=_key(key))


NO_RENDITION = "none"  # what a URL is signed over when the asset has no redacted copy yet


def _shown(session: Session, asset: Asset) -> str:
    """What a URL is signed over: the candidate of a leak-check quarantine, else the redacted
    copy, else nothing (a new candidate or copy makes earlier URLs answer 404)."""
    candidate = candidate_of(session, asset.id)
    if candidate is not None:
        return f"candidate:{candidate.sha256}"
    return asset.redacted_sha256 if asset.redacted_blob and asset.redacted_sha256 else NO_RENDITION


def review_image_url(
    ctx: GatewayContext, session: Session, *, destination: Destination, item: ReviewItem
) -> str:
    """The URL of the item's rendition, or of a placeholder saying there is none yet (a
    quarantine before any rendition: re-process or reject)."""
    asset = session.get(Asset, item.asset_id)
    if asset is None:
        raise NotFound("the review item's asset is gone", asset=item.asset_id)
    key = ctx.keys.dataset_key(session, asset.dataset_id)
    sig = _signature(key, destination.id, item.id, _shown(session, asset))
    base = (destination.gateway_url or "").rstrip("/")
    return f"{base}/v1/review-images/{destination.id}/{item.id}?k={key.version}&s={sig}"


def resolve_review_image(
    ctx: GatewayContext,
    session: Session,
    *,
    destination_id: str,
    item_id: str,
    key_version: int,
    signature: str,
) -> ServedImage:
    """The rendition behind a review URL; the same 404 for everything not proven."""
    item = session.get(ReviewItem, item_id)
    destination = session.get(Destination, destination_id)
    asset = session.get(Asset, item.asset_id) if item else None
    if item is None or destination is None or asset is None:
        raise NotFound("no such image")
    try:
        key = ctx.keys.dataset_key(session, asset.dataset_id, version=key_version)
    except GatewayError:
        raise NotFound("no such image") from None
    shown = _shown(session, asset)
    expected = _signature(key, destination.id, item.id, shown)
    if not hmac.compare_digest(expected, signature):
        raise NotFound("no such image")
    project = session.get(ReviewProject, _project_id(session, asset.dataset_id))
    if (
        item.decided_at is not None
        or AssetState(asset.state) in GONE_STATES
        or project is None
        or project.destination_id != destination.id
    ):
        raise NotFound("no such image")
    clearance = fetch_clearance(ctx, session, asset, destination)
    candidate = candidate_of(session, asset.id) if shown.startswith("candidate:") else None
    if candidate is not None:
        try:
            data = candidate_image(
                ctx, session, asset, candidate, clearance, to_region=destination.region
            )
        except GatewayError:
            raise NotFound("no such image") from None
        return ServedImage(data, "image/png", origin_of(destination.url))
    if shown == NO_RENDITION or asset.redacted_blob is None:
        return ServedImage(placeholder(), "image/png", origin_of(destination.url))
    try:
        data = get_cleared(
            ctx.store,
            asset.redacted_blob,
            clearance,
            point=EnforcementPoint.SYNC,
            to_region=destination.region,
        )
    except NotFound:
        raise NotFound("no such image") from None
    extension = asset.redacted_blob.rsplit(".", 1)[-1]
    return ServedImage(
        data=data,
        media_type=MEDIA_TYPES.get(extension, "application/octet-stream"),
        allow_origin=origin_of(destination.url),
    )


def placeholder() -> bytes:
    """A grey image that says there is nothing to look at (never any pixel of the asset)."""
    # deferred: OpenCV, NumPy and the codecs only when a placeholder is drawn
    import cv2
    import numpy as np

    from redaction.io import encode_image
    from redaction.types import ImageFormat

    pixels = np.full((360, 640, 3), 200, dtype=np.uint8)
    for row, line in enumerate(("No redacted copy exists yet.", "Choose re-process or reject.")):
        cv2.putText(
            pixels, line, (40, 160 + 50 * row), cv2.FONT_HERSHEY_SIMPLEX, 0.9, (40, 40, 40), 2
        )
    return encode_image(pixels, fmt=ImageFormat.PNG)


def _project_id(session: Session, dataset_id: str) -> int | None:
    row = session.exec(select(ReviewProject).where(ReviewProject.dataset_id == dataset_id)).first()
    return row.id if row else None
