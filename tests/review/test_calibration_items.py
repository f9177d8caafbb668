"""Calibration items in the review queue: opened from the seeded batch, decided through the
review loop's own decision step, and measured as reviewer recall in the governance report.

Label Studio's part (serving the task, reading the annotation back) is the review loop's and is
walked in Chromium by tests/labelstudio/test_review_in_chromium.py; here the annotation is the
JSON Label Studio hands back, so the test needs no server."""

from __future__ import annotations

import json
import uuid

import pytest
from sqlmodel import select

from gateway.core.db import transaction
from gateway.core.models import Asset, AssetState, Destination, LineageRecord
from gateway.labelstudio.annotation_store import HeldAnnotation
from gateway.lineage import Actor
from gateway.lineage.ledger import drain
from gateway.reports.build import generate_dataset_report
from gateway.reports.calibration import build_batch
from gateway.reports.render import ReportFormat, render
from gateway.review.calibration import close_calibration, open_calibration
from gateway.review.decide import ReviewPull, _decide
from gateway.review.labelconfig import DECISION, MISSED, ReviewAnswer
from gateway.review.models import ReviewItem
from gateway.review.project import add_reviewer, set_review_destination

pytestmark = pytest.mark.db
ADMIN = Actor("cli", "admin")
SEED = 5
REVIEWER, OUTSIDER = 5, 6


def _review_destination(ctx, dataset) -> Destination:
    with transaction(ctx.engine) as s:
        destination = Destination(
            id=str(uuid.uuid4()),
            name="review-ls",
            url="http://127.0.0.1:9",  # never called: decisions are handed over below
            region=ctx.settings.region,
            token_sealed=b"unused",
            created_at=ctx.clock(),
        )
        s.add(destination)
        s.flush()
        set_review_destination(ctx, s, dataset.id, destination.id, actor=ADMIN)
        add_reviewer(ctx, s, dataset.id, user=REVIEWER, actor=ADMIN)
        s.expunge(destination)
    return destination


def _annotation(item: ReviewItem, boxes, *, user: int, width: int, height: int) -> HeldAnnotation:
    result = [{"from_name": DECISION, "to_name": "image", "type": "choices",
               "value": {"choices": ["release"]}}]  # fmt: skip
    result += [
        {
            "from_name": MISSED,
            "to_name": "image",
            "type": "rectanglelabels",
            "original_width": width,
            "original_height": height,
            "value": {
                "x": 100 * x / width,
                "y": 100 * y / height,
                "width": 100 * w / width,
                "height": 100 * h / height,
                "rotation": 0,
                "rectanglelabels": ["face"],
            },
        }
        for x, y, w, h in boxes
    ]
    return HeldAnnotation(
        ls_id=abs(hash(item.id)) % 10**6, task_id=1, result=result, was_cancelled=False,
        completed_by=user,
    )  # fmt: skip


def _items(ctx, dataset) -> list[ReviewItem]:
    with transaction(ctx.engine) as s:
        rows = s.exec(
            select(ReviewItem).where(
                ReviewItem.dataset_id == dataset.id, ReviewItem.reason == "calibration"
            )
        ).all()
        for row in rows:
            s.expunge(row)
    return sorted(rows, key=lambda r: r.details["calibration"]["photo"])


def test_calibration_items_measure_reviewer_recall(ctx, dataset) -> None:
    destination = _review_destination(ctx, dataset)
    opened = open_calibration(ctx, dataset.id, seed=SEED, actor=ADMIN)
    batch = build_batch(seed=SEED)
    assert len(opened) == len(batch.items)
    assert open_calibration(ctx, dataset.id, seed=SEED, actor=ADMIN) == []  # still open
    items = _items(ctx, dataset)
    with transaction(ctx.engine) as s:
        for row, planned in zip(items, batch.items, strict=True):
            asset = s.get(Asset, row.asset_id)
            assert asset.state == AssetState.REJECTED and asset.original_blob is None
            assert ctx.store.get(asset.redacted_blob) == planned.image  # what reviewers see
            assert row.details["calibration"] == planned.manifest()

    before = json.loads(
        render(generate_dataset_report(ctx, dataset.id, actor=ADMIN), ReportFormat.JSON)
    )
    assert before["report"]["redaction"]["assets_total"] == 0  # not data of the dataset
    assert before["report"]["review"]["reviewer_recall"] is None

    planted = [(row, p) for row, p in zip(items, batch.items, strict=True) if p.visible]
    first, first_plan = planted[0]
    outsider = _annotation(first, first_plan.visible, user=OUTSIDER, width=first_plan.width,
                           height=first_plan.height)  # fmt: skip
    assert _decide(ctx, destination, first, outsider, 9.0, ReviewPull(), None, False) is False
    for n, (row, plan) in enumerate(planted):
        boxes = plan.visible[1:] if n == 0 else plan.visible  # the reviewer misses one face
        held = _annotation(row, boxes, user=REVIEWER, width=plan.width, height=plan.height)
        pull = ReviewPull()
        assert _decide(ctx, destination, row, held, 3.0, pull, None, False) is True
        assert pull.decided == {row.id: "released"} and not pull.resynced
    late = _annotation(first, [], user=REVIEWER, width=1, height=1)  # a concurrent pull's
    assert close_calibration(ctx, first, late, "pn:late", ReviewAnswer(None, ()), 1.0) == (
        "released"
    )  # the first measure stands, recorded once (counted below)

    doc = json.loads(
        render(generate_dataset_report(ctx, dataset.id, actor=ADMIN), ReportFormat.JSON)
    )
    review = doc["report"]["review"]
    total = sum(len(p.visible) for _, p in planted)
    recall = review["reviewer_recall"]
    assert (recall["calibration_items"], recall["planted"], recall["found"]) == (
        len(planted),
        total,
        total - 1,
    )
    assert {c["key"]: c["count"] for c in review["decisions"]}["ignored"] == 1
    assert doc["report"]["redaction"]["assets_total"] == 0
    drain(ctx.engine)
    with transaction(ctx.engine) as s:
        states = {s.get(Asset, r.asset_id).state for r, _ in planted}
        decided = s.exec(
            select(LineageRecord).where(LineageRecord.action == "review.decided")
        ).all()
    assert states == {AssetState.REJECTED}  # measured only: nothing released or re-rendered
    found = sorted(json.loads(r.payload)["parameters"]["found"] for r in decided)
    assert len(decided) == len(planted)
    assert sum(found) == total - 1


def test_without_a_review_destination_nothing_is_written(ctx, dataset) -> None:
    from gateway.core.errors import GatewayError

    with pytest.raises(GatewayError):
        open_calibration(ctx, dataset.id, seed=SEED, actor=ADMIN)
    with transaction(ctx.engine) as s:
        assert s.exec(select(Asset)).all() == []
        assert s.exec(select(ReviewItem)).all() == []


def test_cli_calibrate_needs_a_review_destination(ctx, settings, dataset, monkeypatch) -> None:
    from typer.testing import CliRunner

    from gateway.cli import app as cli_app
    from gateway.core.errors import GatewayError

    monkeypatch.setenv("GATEWAY_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("GATEWAY_DATABASE_URL", settings.resolved_database_url)
    monkeypatch.setenv("GATEWAY_MASTER_KEY", settings.master_key.get_secret_value())
    result = CliRunner().invoke(cli_app, ["review", "calibrate", dataset.name, "--seed", "5"])
    assert isinstance(result.exception, GatewayError), result.output
    assert "review" in str(result.exception)
    with transaction(ctx.engine) as s:
        assert s.exec(select(ReviewItem)).all() == []
