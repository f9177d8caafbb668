"""What enters review: quarantined and flagged assets, and a seeded sample of released ones.

Each item opens with an automatic retention hold on its asset (recorded, released when the
review ends), so the original it may be re-rendered from is kept while it is needed. Where
retention already deleted the original, the item says so and only a reject is accepted."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from sqlmodel import Session, col, select

from gateway.core.context import GatewayContext
from gateway.core.errors import Conflict, IntegrityFailure, InvalidRequest, NotFound
from gateway.core.models import Asset, AssetState
from gateway.datasets import get_dataset
from gateway.labelstudio.tables import Incident
from gateway.lineage import Action, Actor, recorder
from gateway.lineage.checkpoints import create_checkpoint, get_checkpoint, verify_checkpoint
from gateway.lineage.signing import public_keys
from gateway.policy.governing import governing_policy
from gateway.policy.holds import place_hold, release_hold
from gateway.policy.schema import ReviewPolicy
from gateway.review.models import ReviewItem, ReviewProject, ReviewReason, ReviewSample
from gateway.review.sampling import draw, seed_of

REVIEW_HOLD = "review: the original is kept while a human review is open"


def open_items(session: Session, dataset_id: str) -> list[ReviewItem]:
    return list(
        session.exec(
            select(ReviewItem)
            .where(ReviewItem.dataset_id == dataset_id, col(ReviewItem.decided_at).is_(None))
            .order_by(col(ReviewItem.opened_at), col(ReviewItem.id))
        ).all()
    )


def review_project_row(session: Session, dataset_id: str) -> ReviewProject | None:
    return session.exec(select(ReviewProject).where(ReviewProject.dataset_id == dataset_id)).first()


def review_project(session: Session, dataset_id: str) -> ReviewProject:
    """The dataset's review project; NotFound when it has no review destination."""
    row = review_project_row(session, dataset_id)
    if row is None:
        raise NotFound(
            "the dataset has no review destination: name one with "
            "`privacy-gateway review setup DATASET --destination NAME`",
            dataset=dataset_id,
        )
    return row


def open_item(
    ctx: GatewayContext,
    session: Session,
    asset: Asset,
    reason: ReviewReason,
    *,
    actor: Actor,
    detail: str | None = None,
    sample_ref: str | None = None,
    incident_id: str | None = None,
) -> ReviewItem | None:
    """Queue the asset for review (None: it already has an open item)."""
    already = session.exec(
        select(ReviewItem).where(
            ReviewItem.asset_id == asset.id, col(ReviewItem.decided_at).is_(None)
        )
    ).first()
    if already is not None:
        return None
    available = asset.original_blob is not None and asset.original_deleted_at is None
    hold = None
    if available:
        hold = place_hold(
            ctx,
            session,
            dataset_ref=asset.dataset_id,
            reason=REVIEW_HOLD,
            actor=actor,
            asset_id=asset.id,
        )
    item = ReviewItem(
        id=str(uuid.uuid4()),
        dataset_id=asset.dataset_id,
        asset_id=asset.id,
        reason=reason.value,
        detail=detail,
        sample_ref=sample_ref,
        opened_at=ctx.clock(),
        policy_version_id=asset.policy_version_id,
        incident_id=incident_id,
        hold_id=hold.id if hold else None,
        original_available=available,
    )
    session.add(item)
    recorder(ctx, session, actor, now=item.opened_at).record(
        Action.REVIEW_OPENED,
        entity=asset.id,
        dataset=asset.dataset_id,
        parameters={
            "review_item": item.id,
            "reason": reason.value,
            "sample": sample_ref or "",
            "original_available": "yes" if available else "no",
            "retention_hold": item.hold_id or "",
        },
    )
    return item


def end_hold(ctx: GatewayContext, session: Session, item: ReviewItem, *, actor: Actor) -> None:
    if item.hold_id is not None:
        try:
            release_hold(ctx, session, item.hold_id, actor=actor)
        except Conflict:
            pass  # already released by an admin: nothing left to release


@dataclass
class Queued:
    quarantined: list[str] = field(default_factory=list)
    flagged: list[str] = field(default_factory=list)


def queue_withheld(
    ctx: GatewayContext, session: Session, dataset_ref: str, *, actor: Actor
) -> Queued:
    """Every quarantined asset with its reason; an asset with an open incident as flagged."""
    dataset = get_dataset(session, dataset_ref)
    queued = Queued()
    assets = session.exec(
        select(Asset)
        .where(Asset.dataset_id == dataset.id, Asset.state == AssetState.QUARANTINED)
        .order_by(col(Asset.created_at), col(Asset.id))
    ).all()
    for asset in assets:
        incident = session.exec(
            select(Incident).where(Incident.asset_id == asset.id, col(Incident.closed_at).is_(None))
        ).first()
        codes = ", ".join(sorted({str(r.get("code")) for r in asset.reasons or []}))
        if incident is not None:
            item = open_item(
                ctx,
                session,
                asset,
                ReviewReason.FLAGGED,
                actor=actor,
                detail=incident.reason,
                incident_id=incident.id,
            )
            if item is not None:
                queued.flagged.append(asset.id)
        elif open_item(
            ctx, session, asset, ReviewReason.QUARANTINED, actor=actor, detail=codes or None
        ):
            queued.quarantined.append(asset.id)
    return queued


def sample_released(
    ctx: GatewayContext,
    session: Session,
    dataset_ref: str,
    *,
    actor: Actor,
    rate: str | None = None,
) -> ReviewSample:
    """Close the batch with a signed checkpoint, then draw from the released assets not drawn
    from before, seeded by that checkpoint. `rate` overrides the policy's (e.g. a test's 1)."""
    dataset = get_dataset(session, dataset_ref)
    rate = (
        rate
        if rate is not None
        else governing_policy(session, dataset.id).document.review.sample_rate
    )
    _check_rate(rate)
    earlier = {
        a
        for s in session.exec(select(ReviewSample).where(ReviewSample.dataset_id == dataset.id))
        for a in s.population
    }
    population = sorted(
        a
        for a in session.exec(
            select(Asset.id).where(
                Asset.dataset_id == dataset.id, Asset.state == AssetState.RELEASED
            )
        ).all()
        if a not in earlier
    )
    checkpoint = create_checkpoint(ctx, session)  # seals the batch before the seed exists
    seed = seed_of(checkpoint.body)
    sample = ReviewSample(
        id=str(uuid.uuid4()),
        dataset_id=dataset.id,
        checkpoint_seq=checkpoint.tree_size,
        checkpoint_root=checkpoint.root_hash,
        seed=seed,
        rate=rate,
        population=population,
        drawn=draw(population, seed=seed, rate=rate),
        drawn_at=ctx.clock(),
    )
    session.add(sample)
    recorder(ctx, session, actor, now=sample.drawn_at).record(
        Action.REVIEW_SAMPLE_DRAWN,
        entity=dataset.id,
        dataset=dataset.id,
        inputs={"assets": population},
        outputs={"drawn": sample.drawn},
        parameters={
            "sample": sample.id,
            "rate": rate,
            "checkpoint_tree_size": checkpoint.tree_size,
            "seed": seed,
        },
    )
    for asset_id in sample.drawn:
        asset = session.get(Asset, asset_id)
        if asset is not None:
            open_item(ctx, session, asset, ReviewReason.SAMPLED, actor=actor, sample_ref=sample.id)
    return sample


def _check_rate(rate: str) -> None:
    try:
        ReviewPolicy(sample_rate=rate)
    except ValueError:
        raise InvalidRequest(
            "the sample rate is a decimal string between 0 and 1, e.g. '0.02'", rate=rate
        ) from None


@dataclass(frozen=True)
class SampleCheck:
    sample_id: str
    checkpoint_tree_size: int
    seed: str
    drawn: list[str]
    matches: bool


def verify_sample(ctx: GatewayContext, session: Session, sample_id: str) -> SampleCheck:
    """Recompute a draw from its signed checkpoint: the checkpoint's signature must verify,
    the seed must be its digest, and the draw must be what the seed gives. Raises
    IntegrityFailure when the checkpoint does not verify."""
    sample = session.get(ReviewSample, sample_id)
    if sample is None:
        raise NotFound(f"no review sample {sample_id!r}", sample=sample_id)
    del ctx
    checkpoint = get_checkpoint(session, sample.checkpoint_seq)
    key = public_keys(session).get(checkpoint.key_id)
    if key is None:
        raise IntegrityFailure("the checkpoint's signing key is unknown", sample=sample_id)
    verify_checkpoint(checkpoint.body, checkpoint.signature, key)
    seed = seed_of(checkpoint.body)
    if checkpoint.root_hash != sample.checkpoint_root:
        raise IntegrityFailure("the sample names another checkpoint root", sample=sample_id)
    drawn = draw(sample.population, seed=seed, rate=sample.rate)
    return SampleCheck(
        sample.id, checkpoint.tree_size, seed, drawn, seed == sample.seed and drawn == sample.drawn
    )


@dataclass(frozen=True)
class Enqueued:
    quarantined: list[str]
    flagged: list[str]
    sample_id: str | None
    sampled: list[str]


def enqueue_for_review(
    ctx: GatewayContext,
    session: Session,
    dataset_ref: str,
    *,
    actor: Actor,
    sample: bool = True,
    rate: str | None = None,
) -> Enqueued:
    """Quarantined and flagged assets, and (`sample`) this batch's draw of released ones."""
    dataset = get_dataset(session, dataset_ref)
    review_project(session, dataset.id)  # no review destination: nothing is queued
    queued = queue_withheld(ctx, session, dataset.id, actor=actor)
    drawn = sample_released(ctx, session, dataset.id, actor=actor, rate=rate) if sample else None
    return Enqueued(
        queued.quarantined,
        queued.flagged,
        drawn.id if drawn else None,
        list(drawn.drawn) if drawn else [],
    )
