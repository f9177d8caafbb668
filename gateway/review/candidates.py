"""A leak-check quarantine's candidate rendition, kept for review.

When the leak check still sees a face or plate after its rounds of fixes, the engine hands
back the masked image that failed (metadata-free: encoded from pixels in the isolated worker)
with the hits that persisted. A reviewer must see that image to decide, so the gateway keeps
it: sealed under the dataset key like an original (it may still show a person), written only
where the dataset's residency allows storage, served only through the review-only signed URL
while the asset's review item is open (gateway.review.images), and deleted when the review
ends, when the asset is processed again, and with the asset on erasure and retention."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from sqlmodel import Session

from gateway.core import crypto
from gateway.core.clearance import Clearance
from gateway.core.context import GatewayContext
from gateway.core.errors import GatewayError, ResidencyViolation
from gateway.core.keys import KeyPurpose, asset_aad
from gateway.core.models import Asset
from gateway.core.storage import candidate_key, get_cleared, located_key, put_cleared
from gateway.lineage import Actor
from gateway.policy.enforcement import EnforcementPoint, enforce_residency, storage_region
from gateway.review.models import ReviewCandidate, ReviewItem

log = logging.getLogger(__name__)
LEAK_DETECTED = "leak-detected"


def _aad(asset_id: str, key: Any) -> bytes:
    return asset_aad("review-candidate", asset_id, key)


def keep_candidate(
    ctx: GatewayContext,
    session: Session,
    asset: Asset,
    *,
    image: bytes | None,
    leak_hits: list[dict[str, Any]],
    reasons: list[dict[str, Any]],
    actor: Actor,
) -> ReviewCandidate | None:
    """Seal and store the candidate of a leak-check quarantine (in the caller's transaction);
    None when there is none, the quarantine is not the leak check's, or residency refuses
    the write (then the review shows the placeholder: fail closed, nothing stored)."""
    drop_candidate(ctx, session, asset.id)
    if image is None or not any(r.get("code") == LEAK_DETECTED for r in reasons):
        return None
    region = storage_region(ctx)
    try:
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
    except ResidencyViolation:
        log.warning("candidate rendition not kept: residency refuses the storage write")
        return None
    key = ctx.keys.dataset_key(session, asset.dataset_id)
    sealed = crypto.seal(image, key=key.subkey(KeyPurpose.AT_REST), aad=_aad(asset.id, key))
    blob = located_key(ctx.store, candidate_key(asset.dataset_id, asset.id), region=region)
    put_cleared(ctx.store, blob, sealed, clearance)
    row = ReviewCandidate(
        asset_id=asset.id,
        blob=blob,
        sha256=crypto.sha256_hex(image),
        key_version=key.version,
        leak_hits=[_hit(h) for h in leak_hits],
        created_at=ctx.clock(),
    )
    session.add(row)
    return row


def _hit(hit: dict[str, Any]) -> dict[str, Any]:
    keep = ("label", "x", "y", "w", "h", "score", "detector")
    return {k: hit[k] for k in keep if k in hit}


def candidate_of(session: Session, asset_id: str) -> ReviewCandidate | None:
    return session.get(ReviewCandidate, asset_id)


def candidate_image(
    ctx: GatewayContext,
    session: Session,
    asset: Asset,
    row: ReviewCandidate,
    clearance: Clearance,
    *,
    to_region: str,
) -> bytes:
    """The plain candidate image, for a review in `to_region` under the sync clearance of its
    dataset there (raises a GatewayError when it cannot be read or is not cleared)."""
    key = ctx.keys.dataset_key(session, asset.dataset_id, version=row.key_version)
    sealed = get_cleared(
        ctx.store, row.blob, clearance, point=EnforcementPoint.SYNC, to_region=to_region
    )
    return crypto.unseal(sealed, key=key.subkey(KeyPurpose.AT_REST), aad=_aad(row.asset_id, key))


def drop_reviewed_candidate(ctx: GatewayContext, session: Session, item: ReviewItem) -> bool:
    """The review ended: its candidate goes, unless a re-process it asked for already made a
    new one (made after the item opened; the next review shows that one)."""
    row = session.get(ReviewCandidate, item.asset_id)
    if row is None or (item.opened_at is not None and _after(row.created_at, item.opened_at)):
        return False
    return drop_candidate(ctx, session, item.asset_id)


def _after(a: datetime, b: datetime) -> bool:
    if (a.tzinfo is None) != (b.tzinfo is None):  # SQLite hands back naive UTC
        a, b = a.replace(tzinfo=None), b.replace(tzinfo=None)
    return a > b


def drop_candidate(ctx: GatewayContext, session: Session, asset_id: str) -> bool:
    """Delete the asset's candidate (blob and row), if any; True if there was one."""
    row = session.get(ReviewCandidate, asset_id)
    if row is None:
        return False
    try:
        ctx.store.delete(row.blob)
    except GatewayError as exc:  # the row goes anyway: nothing will serve it again
        log.warning("candidate blob not deleted: %s", exc.code)
    session.delete(row)
    return True
