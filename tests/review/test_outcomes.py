"""The review table and the query the governance report reads."""

from __future__ import annotations

import uuid

import pytest

from gateway.core.db import transaction
from gateway.ingest import Upload, ingest_upload
from gateway.lineage import Actor
from gateway.review.models import ReviewDecision, ReviewItem, ReviewReason
from gateway.review.outcomes import review_outcomes
from tests.conftest import PHOTOS

pytestmark = pytest.mark.db


def test_outcomes_read_back_every_item_of_the_dataset(ctx, dataset, clock) -> None:
    name = sorted(p.name for p in PHOTOS.glob("*.jpg"))[0]
    with transaction(ctx.engine) as s:
        asset_id = ingest_upload(
            s, ctx, dataset, Upload(name, (PHOTOS / name).read_bytes()), actor=Actor("cli", "t")
        ).asset_id
        s.add(
            ReviewItem(
                id=str(uuid.uuid4()),
                dataset_id=dataset.id,
                asset_id=asset_id,
                reason=ReviewReason.SAMPLED,
                sample_ref="s1",
                opened_at=clock(),
                decided_at=clock(),
                decision=ReviewDecision.RELEASED,
                reviewer="pn:abc",
                findings={"face": 1, "plate": 0},
                lead_time_seconds=4.25,
                ls_task_id=7,
            )
        )
        clock.advance(seconds=1)
        s.add(
            ReviewItem(
                id=str(uuid.uuid4()),
                dataset_id=dataset.id,
                asset_id=asset_id,
                reason=ReviewReason.QUARANTINED,
                opened_at=clock(),
            )
        )
    with transaction(ctx.engine) as s:
        got = review_outcomes(s, dataset.id)
        assert review_outcomes(s, "no-such-dataset") == []
    assert [o.reason for o in got] == ["sampled", "quarantined"]
    first, second = got
    assert first.findings == (("face", 1), ("plate", 0)) and first.found_anything
    assert first.decision == "released" and first.reviewer == "pn:abc"
    assert first.lead_time_seconds == 4.25 and first.sample_ref == "s1"
    assert second.decision is None and not second.found_anything and second.original_available
