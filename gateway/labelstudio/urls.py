"""Signed, asset-scoped image URLs: the only way annotators' browsers reach a redacted image.

A URL names one destination and one asset and carries an HMAC over both and the redacted
copy's SHA-256, under a subkey of the dataset key. It has no timer: Label Studio freezes it
into task data, so it stays valid exactly as long as the redacted copy may be shown. Every
fetch re-checks the asset's state and its task's state; shredding the dataset key kills every
URL of the dataset at once.

Whoever holds a URL is an outsider until its signature checks out, so every answer before
that is the same 404 (no "key shredded" that would confirm an asset exists), and no answer
names a storage path, a policy or a dataset. A refused fetch is recorded once per asset and
window, so a flood of fetches cannot grow the ledger by one record per request.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import urlsplit

from sqlmodel import Session

from gateway.core import crypto
from gateway.core.context import GatewayContext
from gateway.core.errors import GatewayError, KeyUnavailable, NotFound, ResidencyViolation
from gateway.core.keys import DatasetKeyMaterial
from gateway.core.models import Asset, AssetState, AssetSync, Destination, SyncState
from gateway.core.storage import get_cleared
from gateway.lineage import Actor
from gateway.policy.enforcement import Clearance, EnforcementPoint, enforce_residency

IMAGE_URL = Actor("system", "image-url")
REFUSAL_RECORD_WINDOW = timedelta(hours=1)  # one refused-fetch record per asset and hour


class ImageGone(GatewayError):
    code, status, title = "image-gone", 410, "This image is no longer available"


class ImageWithheld(GatewayError):
    """A valid URL whose image may not be shown here now; says nothing about why."""

    code, status, title = "image-withheld", 403, "This image cannot be shown"


def _no_such_image() -> NotFound:
    return NotFound("no such image")


SERVABLE_SYNC = frozenset({SyncState.SYNCED, SyncState.INTENT_RECORDED})
GONE_STATES = frozenset({AssetState.ERASED, AssetState.EXPIRED})
MEDIA_TYPES = {"jpg": "image/jpeg", "jpeg": "image/jpeg", "png": "image/png", "webp": "image/webp"}


def _url_key(key: DatasetKeyMaterial) -> bytes:
    info = f"lpg/v1/dataset/{key.dataset_id}/v{key.version}/image-url".encode()
    return crypto.derive(key.secret, info=info)


def _signature(key: DatasetKeyMaterial, destination_id: str, asset: Asset) -> str:
    message = f"{destination_id}/{asset.id}/{asset.redacted_sha256}".encode()
    return crypto.keyed_digest(message, key=_url_key(key))


def image_url(
    ctx: GatewayContext, session: Session, *, destination: Destination, asset: Asset
) -> str:
    if asset.redacted_blob is None or asset.redacted_sha256 is None:
        raise NotFound("the asset has no redacted copy", asset_id=asset.id)
    key = ctx.keys.dataset_key(session, asset.dataset_id)
    base = (destination.gateway_url or "").rstrip("/")
    sig = _signature(key, destination.id, asset)
    return f"{base}/v1/images/{destination.id}/{asset.id}?k={key.version}&s={sig}"


@dataclass(frozen=True, slots=True)
class ServedImage:
    data: bytes
    media_type: str
    allow_origin: str


def resolve_image(
    ctx: GatewayContext,
    session: Session,
    *,
    destination_id: str,
    asset_id: str,
    key_version: int,
    signature: str,
) -> ServedImage:
    """The redacted bytes behind a signed URL; 404 for anything not proven by the signature
    (unknown ids, an unknown or shredded key version, a wrong signature, not released), 410
    once a signed image was erased, expired or its task removed, 403 (generic) when the
    governing policy no longer lets this destination's region see it."""
    asset = session.get(Asset, asset_id)
    destination = session.get(Destination, destination_id)
    if asset is None or destination is None or asset.redacted_sha256 is None:
        raise _no_such_image()
    try:
        key = ctx.keys.dataset_key(session, asset.dataset_id, version=key_version)
    except KeyUnavailable:
        raise _no_such_image() from None  # made-up and shredded versions look the same
    expected = _signature(key, destination.id, asset)
    if not hmac.compare_digest(expected, signature):
        raise _no_such_image()
    blob = _check_servable(session, asset, destination)
    clearance = fetch_clearance(ctx, session, asset, destination)
    try:
        data = get_cleared(
            ctx.store, blob, clearance, point=EnforcementPoint.SYNC, to_region=destination.region
        )
    except NotFound:
        raise _no_such_image() from None  # the store's own error names the blob's path
    extension = blob.rsplit(".", 1)[-1]
    return ServedImage(
        data=data,
        media_type=MEDIA_TYPES.get(extension, "application/octet-stream"),
        allow_origin=origin_of(destination.url),
    )


def fetch_clearance(
    ctx: GatewayContext, session: Session, asset: Asset, destination: Destination
) -> Clearance:
    """The per-fetch residency check of a signed image URL (annotation or review image): the
    destination's region may have been denied since the task was made, so it fails closed at
    every fetch, recording a refusal once per asset and window. The holder of a URL learns
    nothing of the policy, its digest or the dataset: only ImageWithheld."""
    try:
        return enforce_residency(
            ctx,
            session,
            point=EnforcementPoint.SYNC,
            dataset_id=asset.dataset_id,
            target_region=destination.region,
            actor=IMAGE_URL,
            entity_type="asset",
            entity_id=asset.id,
            transfer_basis=destination.transfer_basis,
            record_once_per=REFUSAL_RECORD_WINDOW,
        )
    except ResidencyViolation:
        raise ImageWithheld("this image cannot be shown here") from None


def _check_servable(session: Session, asset: Asset, destination: Destination) -> str:
    state = AssetState(asset.state)
    if state in GONE_STATES:
        raise ImageGone("this image was erased or has expired")
    sync = session.get(AssetSync, (asset.id, destination.id))
    if sync is not None and sync.state == SyncState.REMOVED:
        raise ImageGone("this image's task was removed")
    if sync is None or sync.state not in SERVABLE_SYNC or asset.redacted_blob is None:
        raise _no_such_image()
    if state is AssetState.RELEASED:  # whether or not its original is still stored
        return asset.redacted_blob
    raise _no_such_image()  # quarantined, processing: never served


def origin_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"
