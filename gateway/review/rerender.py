"""Render an asset again from its original with its automatic regions and a reviewer's
manual ones, then let the real engine (isolated worker, the dataset's redaction policy)
detect again and run its leak check on the result.

The original is decoded here as at ingest (same limits), the union of regions is masked with
the policy's operator, and the masked image goes to the engine losslessly (PNG): the engine
then adds whatever it finds and confirms, with its leak check, that nothing is left it can
see. Only its output, with the metadata allowlist applied, is ever stored."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

from sqlmodel import Session, col, delete, select

from gateway.asset_states import transition
from gateway.core import crypto
from gateway.core.context import GatewayContext
from gateway.core.db import transaction
from gateway.core.errors import GatewayError
from gateway.core.keys import KeyPurpose
from gateway.core.models import Asset, AssetState, Detection
from gateway.core.storage import located_key, put_cleared, redacted_key
from gateway.ingest import original_aad
from gateway.lineage import Actor
from gateway.pipeline import _storage_allowed
from gateway.policy.derived import delete_blob
from gateway.policy.governing import governing_policy
from gateway.policy.redaction_choice import redactor_for
from gateway.pseudonymisation.release import release_file
from gateway.redaction_step import RedactionOutcome, Redactor
from gateway.review.candidates import drop_candidate
from gateway.review.labelconfig import ManualBox
from redaction import operators
from redaction.errors import RedactionError
from redaction.io import decode_image, encode_image
from redaction.policy import RedactionPolicy
from redaction.types import BGRImage, ImageFormat, Label, Region

MANUAL = "manual"
REVIEWER_DETECTOR = "reviewer"


@dataclass(frozen=True)
class Rendered:
    released: bool
    redacted_sha256: str | None
    reasons: list[dict[str, Any]]


def manual_regions(boxes: tuple[ManualBox, ...], *, width: int, height: int) -> list[Region]:
    """Reviewer boxes in whole pixels, rounded outwards (never a pixel less than drawn)."""
    regions = []
    for b in boxes:
        x0, y0 = max(0, math.floor(b.x)), max(0, math.floor(b.y))
        x1, y1 = min(width, math.ceil(b.x + b.w)), min(height, math.ceil(b.y + b.h))
        if x1 > x0 and y1 > y0:
            regions.append(Region(Label(b.label), x0, y0, x1 - x0, y1 - y0, 1.0, REVIEWER_DETECTOR))
    return regions


def mask_regions(
    pixels: BGRImage, automatic: list[Region], manual: list[Region], *, policy: RedactionPolicy
) -> BGRImage:
    """Mask as the engine does for its own regions (the policy's operator; faces as inscribed
    ellipses when the policy says so), and every manual box as a whole rectangle: the reviewer
    drew a rectangle, and covering all of it is the safe choice."""
    ellipse = frozenset({Label.FACE}) if policy.faces.ellipse else frozenset()
    masked = operators.apply(pixels, automatic, operator=policy.operator, ellipse_labels=ellipse)
    return operators.apply(masked, manual, operator=policy.operator, ellipse_labels=frozenset())


def rerender(
    ctx: GatewayContext,
    asset_id: str,
    boxes: tuple[ManualBox, ...],
    *,
    redactor: Redactor,
    actor: Actor,
    parameters: dict[str, Any],
) -> Rendered:
    """Re-render and record: released with a new redacted copy, or quarantined with the
    engine's reasons. The asset must be quarantined (the caller withheld it first)."""
    with transaction(ctx.engine) as session:
        asset = _asset(session, asset_id)
        key = ctx.keys.dataset_key(session, asset.dataset_id, version=asset.key_version)
        policy = governing_policy(session, asset.dataset_id).document.redaction
        automatic = _regions(session, asset_id)
        chosen = redactor_for(session, asset, redactor)
        transition(
            session,
            asset,
            AssetState.PROCESSING,
            actor=actor,
            now=ctx.clock(),
            region=ctx.settings.region,
            parameters={"reprocess": "review", **parameters},
        )
    manual: list[Region] = []
    try:
        sealed = ctx.store.get(asset.original_blob or "")
        original = crypto.unseal(
            sealed, key=key.subkey(KeyPurpose.AT_REST), aad=original_aad(asset.id, key)
        )
        image = decode_image(original, limits=policy.limits)
        height, width = image.pixels.shape[:2]
        manual = manual_regions(boxes, width=width, height=height)
        masked = mask_regions(image.pixels, automatic, manual, policy=policy)
        outcome = chosen.redact(encode_image(masked, fmt=ImageFormat.PNG))
        if outcome.released and outcome.output is not None:
            outcome = replace(
                outcome,
                output=release_file(
                    ctx, dataset_id=asset.dataset_id, original=original, output=outcome.output
                ),
            )
    except (GatewayError, RedactionError) as exc:
        reason = {"code": exc.code, "message": exc.message}
        outcome = RedactionOutcome(False, None, "", reasons=[reason])
    return _record(ctx, asset_id, outcome, automatic, manual, actor=actor, parameters=parameters)


def _regions(session: Session, asset_id: str) -> list[Region]:
    rows = session.exec(select(Detection).where(Detection.asset_id == asset_id)).all()
    return [
        Region(Label(d.label), d.x, d.y, d.w, d.h, d.score_milli / 1000, d.detector)
        for d in rows
        if d.label in Label.__members__.values()
    ]


def _record(
    ctx: GatewayContext,
    asset_id: str,
    outcome: RedactionOutcome,
    automatic: list[Region],
    manual: list[Region],
    *,
    actor: Actor,
    parameters: dict[str, Any],
) -> Rendered:
    now = ctx.clock()
    with transaction(ctx.engine) as session:
        asset = _asset(session, asset_id)
        released = outcome.released and outcome.output is not None
        clearance = None
        if released:
            outcome, clearance = _storage_allowed(ctx, session, asset, outcome)
            released = outcome.released
        if released:
            assert outcome.output is not None and clearance is not None  # noqa: S101 (mypy)
            digest = crypto.sha256_hex(outcome.output)
            delete_blob(ctx, session, asset.redacted_blob, owner=asset.id)
            asset.redacted_blob = located_key(
                ctx.store,
                redacted_key(asset.dataset_id, asset.id, digest, "jpg"),
                region=clearance.region,
            )
            asset.redacted_sha256 = digest
            put_cleared(ctx.store, asset.redacted_blob, outcome.output, clearance)
            _replace_detections(session, asset_id, automatic, outcome.regions, manual)
        drop_candidate(ctx, session, asset_id)  # a failed re-render is rejected (decide)
        transition(
            session,
            asset,
            AssetState.RELEASED if released else AssetState.QUARANTINED,
            actor=actor,
            now=now,
            region=ctx.settings.region,
            reasons=None if released else (outcome.reasons or [{"code": "not-released"}]),
            outputs={"redacted_sha256": asset.redacted_sha256} if released else None,
            parameters={
                **parameters,
                "manual_regions": len(manual),
                "automatic_regions": len(automatic),
                "tools": outcome.tools,
                "redaction_policy_sha256": outcome.policy_digest,
            },
        )
        return Rendered(released, asset.redacted_sha256 if released else None, outcome.reasons)


def _replace_detections(
    session: Session,
    asset_id: str,
    automatic: list[Region],
    engine: list[dict[str, Any]],
    manual: list[Region],
) -> None:
    """Keep the earlier automatic regions, add what the engine found now and the manual ones
    (stage `manual`), so a later review or re-render starts from all of them."""
    session.exec(delete(Detection).where(col(Detection.asset_id) == asset_id))
    seen: set[tuple[str, int, int, int, int]] = set()
    rows = [
        *((r.label.value, r.x, r.y, r.w, r.h, r.score, r.detector, "detect") for r in automatic),
        *(
            (
                r["label"],
                r["x"],
                r["y"],
                r["w"],
                r["h"],
                float(r.get("score", 0.0)),
                r["detector"],
                r.get("stage", "detect"),
            )
            for r in engine
        ),
        *((r.label.value, r.x, r.y, r.w, r.h, 1.0, REVIEWER_DETECTOR, MANUAL) for r in manual),
    ]
    for label, x, y, w, h, score, detector, stage in rows:
        if (label, x, y, w, h) in seen:
            continue
        seen.add((label, x, y, w, h))
        session.add(
            Detection(
                asset_id=asset_id,
                label=label,
                x=x,
                y=y,
                w=w,
                h=h,
                score_milli=round(score * 1000),
                detector=detector,
                stage=stage,
            )
        )


def _asset(session: Session, asset_id: str) -> Asset:
    asset = session.get(Asset, asset_id)
    if asset is None:
        raise LookupError(f"review refers to a missing asset {asset_id}")
    return asset
