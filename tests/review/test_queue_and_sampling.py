"""What enters review, with its retention hold, and the seeded, verifiable sample."""

from __future__ import annotations

import pytest
from sqlmodel import select

from gateway.asset_states import transition
from gateway.core.db import transaction
from gateway.core.errors import IntegrityFailure
from gateway.core.models import Asset, AssetState, Destination
from gateway.ingest import Upload, ingest_upload
from gateway.lineage import Actor
from gateway.lineage.tables import LineageCheckpoint
from gateway.policy.retention import plan_retention
from gateway.policy.tables import LegalHold
from gateway.review.models import ReviewItem, ReviewProject, ReviewSample
from gateway.review.queue import end_hold, enqueue_for_review, verify_sample
from gateway.review.sampling import draw
from tests.conftest import PHOTOS

pytestmark = pytest.mark.db
ADMIN = Actor("cli", "t")
NAMES = sorted(p.name for p in PHOTOS.glob("*.jpg"))


def test_the_draw_is_a_pure_function_of_seed_and_population() -> None:
    population = [f"asset-{i:04d}" for i in range(2000)]
    seed = "ab" * 32
    drawn = draw(population, seed=seed, rate="0.02")
    assert drawn == draw(list(reversed(population)), seed=seed, rate="0.02")
    assert 20 <= len(drawn) <= 60  # 2% of 2000 = 40 expected (binomial sd about 6)
    assert draw(population, seed="cd" * 32, rate="0.02") != drawn
    assert draw(population, seed=seed, rate="0") == []
    assert draw(population, seed=seed, rate="1") == sorted(population)


def _assets(ctx, dataset, states: list[AssetState]) -> list[str]:
    ids = []
    for name, state in zip(NAMES, states, strict=False):
        with transaction(ctx.engine) as s:
            asset_id = ingest_upload(
                s, ctx, dataset, Upload(name, (PHOTOS / name).read_bytes()), actor=ADMIN
            ).asset_id
            asset = s.get(Asset, asset_id)
            path = {
                AssetState.RELEASED: [AssetState.PROCESSING, AssetState.RELEASED],
                AssetState.QUARANTINED: [AssetState.QUARANTINED],
            }[state]
            for step in path:
                transition(s, asset, step, actor=ADMIN, now=ctx.clock(), region="eu-de")
        ids.append(asset_id)
    return ids


def _review_destination(ctx, dataset) -> None:
    """A review project row on a destination (no Label Studio needed to queue)."""
    with transaction(ctx.engine) as s:
        s.add(
            Destination(
                id="dest-review",
                name="review-eu",
                url="http://127.0.0.1:9",
                region="eu-de",
                token_sealed=b"",
                created_at=ctx.clock(),
            )
        )
        s.flush()
        s.add(
            ReviewProject(
                dataset_id=dataset.id,
                destination_id="dest-review",
                marker="m",
                created_at=ctx.clock(),
            )
        )


def test_quarantined_and_sampled_assets_are_queued_with_a_retention_hold(
    ctx, dataset, clock
) -> None:
    released_a, released_b, quarantined = _assets(
        ctx, dataset, [AssetState.RELEASED, AssetState.RELEASED, AssetState.QUARANTINED]
    )
    _review_destination(ctx, dataset)
    with transaction(ctx.engine) as s:
        queued = enqueue_for_review(ctx, s, dataset.id, actor=ADMIN, rate="1")
    assert queued.quarantined == [quarantined] and queued.flagged == []
    assert queued.sampled == sorted([released_a, released_b])
    with transaction(ctx.engine) as s:
        again = enqueue_for_review(ctx, s, dataset.id, actor=ADMIN, rate="1")
        assert again.quarantined == [] and again.sampled == []  # each asset once
        items = s.exec(select(ReviewItem)).all()
        assert {i.asset_id for i in items} == {released_a, released_b, quarantined}
        holds = {h.asset_id: h for h in s.exec(select(LegalHold)).all()}
        assert set(holds) == {released_a, released_b, quarantined}
        clock.advance(days=400)  # past every retention period of the default policy
        plan = plan_retention(s, now=clock())
        assert not [d for d in plan.due if d.entity_id in holds]  # held while in review
        (item,) = [i for i in items if i.asset_id == quarantined]
        end_hold(ctx, s, item, actor=ADMIN)
    with transaction(ctx.engine) as s:
        assert s.get(LegalHold, item.hold_id).released_at is not None
        due = {d.entity_id for d in plan_retention(s, now=clock()).due}
        assert quarantined in due and released_a not in due


def test_an_asset_whose_original_is_gone_is_queued_for_reject_only(ctx, dataset) -> None:
    (quarantined,) = _assets(ctx, dataset, [AssetState.QUARANTINED])
    with transaction(ctx.engine) as s:
        asset = s.get(Asset, quarantined)
        asset.original_blob, asset.original_deleted_at = None, ctx.clock()
        s.add(asset)
    _review_destination(ctx, dataset)
    with transaction(ctx.engine) as s:
        enqueue_for_review(ctx, s, dataset.id, actor=ADMIN, sample=False)
        (item,) = s.exec(select(ReviewItem)).all()
        assert item.original_available is False and item.hold_id is None


def test_a_sample_recomputes_from_its_signed_checkpoint_and_tampering_shows(ctx, dataset) -> None:
    _assets(ctx, dataset, [AssetState.RELEASED] * 4)
    _review_destination(ctx, dataset)
    with transaction(ctx.engine) as s:
        queued = enqueue_for_review(ctx, s, dataset.id, actor=ADMIN, rate="0.5")
    with transaction(ctx.engine) as s:
        check = verify_sample(ctx, s, queued.sample_id)
        sample = s.get(ReviewSample, queued.sample_id)
        assert check.matches and check.drawn == queued.sampled == sample.drawn
        assert len(sample.population) == 4
        sample.drawn = sorted(set(sample.population) - set(sample.drawn))  # a chosen draw
        s.add(sample)
    with transaction(ctx.engine) as s:
        assert not verify_sample(ctx, s, queued.sample_id).matches
        checkpoint = s.get(LineageCheckpoint, sample.checkpoint_seq)
        checkpoint.body = checkpoint.body.replace('"tree_size"', '"tree_size" ', 1)
        s.add(checkpoint)
    with transaction(ctx.engine) as s, pytest.raises(IntegrityFailure):
        verify_sample(ctx, s, queued.sample_id)


def test_a_quarantine_without_a_rendition_shows_reviewers_a_placeholder_only(ctx, dataset) -> None:
    from urllib.parse import parse_qs, urlsplit

    from gateway.core.errors import NotFound
    from gateway.review.images import resolve_review_image, review_image_url

    _assets(ctx, dataset, [AssetState.QUARANTINED])
    _review_destination(ctx, dataset)
    with transaction(ctx.engine) as s:
        enqueue_for_review(ctx, s, dataset.id, actor=ADMIN, sample=False)
        (item,) = s.exec(select(ReviewItem)).all()
        url = review_image_url(ctx, s, destination=s.get(Destination, "dest-review"), item=item)
    query = parse_qs(urlsplit(url).query)
    args = {"destination_id": "dest-review", "item_id": item.id, "key_version": int(query["k"][0])}
    with transaction(ctx.engine) as s:
        shown = resolve_review_image(ctx, s, signature=query["s"][0], **args)
        assert shown.media_type == "image/png" and shown.data.startswith(b"\x89PNG")
        with pytest.raises(NotFound):
            resolve_review_image(ctx, s, signature="0" * 64, **args)
        row = s.get(ReviewItem, item.id)
        row.decided_at = ctx.clock()
        s.add(row)
    with transaction(ctx.engine) as s, pytest.raises(NotFound):
        resolve_review_image(ctx, s, signature=query["s"][0], **args)
