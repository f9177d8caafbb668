"""Calibration items in a dataset's review queue: reviewer recall, measured.

`open_calibration` adds the seeded calibration batch (`gateway.reports.calibration`: the bundled
CC0 photos with every labelled face masked except 0-2 left visible on purpose) to the review
queue with reason `calibration`. Each image is its own asset of the dataset, created `rejected`
with the reason code `calibration`: nothing syncs, samples, re-processes or releases it, and it
has no original (a public photo, never user data). The review task shows it like a sampled
image, masked regions as the engine's pre-annotation, so a reviewer cannot tell it apart.
`close_calibration` records what the reviewer found (the face boxes, in pixels, in
`details["face_boxes"]`) and never touches the asset: the governance report matches those
boxes with the planted faces (`collect_review`)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlmodel import Session, col, select

from gateway.core import crypto
from gateway.core.context import GatewayContext
from gateway.core.db import transaction
from gateway.core.models import Asset, AssetState, Detection
from gateway.core.storage import located_key, put_cleared, redacted_key
from gateway.datasets import get_dataset
from gateway.labelstudio.annotation_store import HeldAnnotation
from gateway.lineage import Action, Actor, recorder
from gateway.policy.enforcement import (
    Clearance,
    EnforcementPoint,
    enforce_residency,
    storage_region,
)
from gateway.pseudonymisation.dataset_secrets import content_digest_key
from gateway.reports.calibration import CalibrationItem, build_batch, planted_found
from gateway.review.labelconfig import ReviewAnswer
from gateway.review.models import ReviewDecision, ReviewItem, ReviewReason
from gateway.review.queue import review_project

CALIBRATION_CODE = "calibration"
CALIBRATION_NOTE = (
    "calibration image: a bundled public photo with faces left visible on purpose, to measure "
    "reviewer recall (not user data)"
)


def open_calibration(
    ctx: GatewayContext, dataset_ref: str, *, seed: int, actor: Actor
) -> list[str]:
    """Queue the calibration batch drawn with `seed`; returns the new review item ids (an item
    whose image is already queued and open is not queued twice)."""
    batch = build_batch(seed=seed)
    with transaction(ctx.engine) as session:
        dataset = get_dataset(session, dataset_ref)
        review_project(session, dataset.id)  # no review destination: refused before any write
        clearance = enforce_residency(
            ctx,
            session,
            point=EnforcementPoint.STORAGE_WRITE,
            dataset_id=dataset.id,
            target_region=storage_region(ctx),
            actor=actor,
            entity_type="dataset",
            entity_id=dataset.id,
        )
        opened = [
            _open(ctx, session, dataset.id, item, clearance, seed=seed, actor=actor)
            for item in batch.items
        ]
        return [item_id for item_id in opened if item_id is not None]


def _open(
    ctx: GatewayContext,
    session: Session,
    dataset_id: str,
    item: CalibrationItem,
    clearance: Clearance,
    *,
    seed: int,
    actor: Actor,
) -> str | None:
    now = ctx.clock()
    digest = crypto.keyed_digest(item.image, key=content_digest_key(ctx, session, dataset_id))
    asset = session.exec(
        select(Asset).where(Asset.dataset_id == dataset_id, Asset.content_digest == digest)
    ).first()
    if asset is None:
        asset = _calibration_asset(ctx, dataset_id, item, digest, clearance, now=now)
        session.add(asset)
        session.flush()
        # the masked regions, shown as the engine's pre-annotation like on any sampled image
        session.add_all(
            Detection(asset_id=asset.id, label="face", x=x, y=y, w=w, h=h, score_milli=1000,
                      detector=CALIBRATION_CODE, stage="detect")
            for x, y, w, h in item.regions
        )  # fmt: skip
    elif _open_item(session, asset.id):
        return None
    row = ReviewItem(
        id=str(uuid.uuid4()),
        dataset_id=dataset_id,
        asset_id=asset.id,
        reason=ReviewReason.CALIBRATION.value,
        opened_at=now,
        details={"calibration": item.manifest(), "seed": seed},
    )
    session.add(row)
    session.flush()
    recorder(ctx, session, actor, now=now).record(
        Action.REVIEW_CALIBRATION_OPENED,
        entity=asset.id,
        dataset=dataset_id,
        outputs={"redacted_sha256": asset.redacted_sha256 or ""},
        parameters={
            "review_item": row.id,
            "seed": seed,
            "photo_sha256": item.photo_sha256,
            "planted": len(item.visible),
        },
    )
    return row.id


def _open_item(session: Session, asset_id: str) -> bool:
    stmt = select(ReviewItem).where(
        ReviewItem.asset_id == asset_id, col(ReviewItem.decided_at).is_(None)
    )
    return session.exec(stmt).first() is not None


def _calibration_asset(
    ctx: GatewayContext,
    dataset_id: str,
    item: CalibrationItem,
    digest: str,
    clearance: Clearance,
    *,
    now: datetime,
) -> Asset:
    asset_id = str(uuid.uuid4())
    sha = crypto.sha256_hex(item.image)
    blob = located_key(
        ctx.store, redacted_key(dataset_id, asset_id, sha, "jpg"), region=clearance.region
    )
    put_cleared(ctx.store, blob, item.image, clearance)
    return Asset(
        id=asset_id,
        dataset_id=dataset_id,
        state=AssetState.REJECTED,
        content_digest=digest,
        source_format="jpeg",
        width=item.width,
        height=item.height,
        byte_size=len(item.image),
        redacted_blob=blob,
        redacted_sha256=sha,
        reasons=[{"code": CALIBRATION_CODE, "message": CALIBRATION_NOTE}],
        created_at=now,
        updated_at=now,
    )


def close_calibration(
    ctx: GatewayContext,
    item: ReviewItem,
    held: HeldAnnotation,
    who: str,
    answer: ReviewAnswer,
    lead_time: float | None,
) -> str:
    """Record a listed reviewer's answer on a calibration item: the decision as given, the
    findings, and the face boxes the report matches with the planted faces."""
    decision = answer.decision or ReviewDecision.REJECTED
    faces = [b for b in answer.boxes if b.label == "face"]
    boxes = [[round(b.x), round(b.y), round(b.w), round(b.h)] for b in faces]
    now = ctx.clock()
    with transaction(ctx.engine) as session:
        row = session.get(ReviewItem, item.id, with_for_update=True)
        assert row is not None  # noqa: S101 (review items are never deleted)
        if row.decided_at is not None:  # a concurrent pull measured it first: once only
            return str(row.decision)
        row.decided_at, row.decision, row.reviewer = now, decision.value, who
        row.findings, row.lead_time_seconds = answer.findings(), lead_time
        row.ls_annotation_id = held.ls_id
        row.details = {**row.details, "face_boxes": boxes}
        session.add(row)
        visible: list[Any] = (row.details.get("calibration") or {}).get("visible", [])
        drawn = [(float(x), float(y), float(w), float(h)) for x, y, w, h in boxes]
        hit = planted_found(visible, drawn)
        recorder(ctx, session, Actor("reviewer", who), now=now).record(
            Action.REVIEW_DECIDED,
            entity=row.asset_id,
            dataset=row.dataset_id,
            parameters={
                "review_item": row.id,
                "reviewer": who,
                "decision": decision.value,
                "reason": row.reason,
                "findings": row.findings,
                "planted": hit.planted,
                "found": hit.found,
                "task_id": row.ls_task_id or 0,
                "annotation_id": held.ls_id,
            },
        )
    return decision.value
