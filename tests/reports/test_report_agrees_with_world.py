"""The governance report agrees with what is stored: re-processing counts each asset's current
rendition once; deleted originals are not "kept"; a quarantined asset stays quarantined with
its reason after retention deletes its original; a refused same-region move is a residency
refusal, not a GDPR Chapter V transfer."""

from __future__ import annotations

from collections import Counter

import pytest
from sqlmodel import select

from gateway.asset_states import transition
from gateway.core.db import transaction
from gateway.core.errors import ResidencyViolation
from gateway.core.models import Asset, AssetState, Detection
from gateway.lineage import Actor
from gateway.pipeline import drain
from gateway.policy.enforcement import EnforcementPoint, enforce_residency
from gateway.policy.reprocess import apply_reprocess, plan_reprocess
from gateway.policy.retention import run_retention
from gateway.reports.build import generate_dataset_report
from tests.labelstudio.fixtures import release_photos
from tests.policy.helpers import bind, policy_doc

pytestmark = [pytest.mark.db, pytest.mark.integration]
ACTOR = Actor("cli", "officer")
PHOTOS = ["masks_maksssksksss44.jpg", "dashcam_dayride_type1_001_t607.jpg"]


def _detections(ctx, ids: list[str]) -> tuple[Counter[str], Counter[str]]:
    with transaction(ctx.engine) as s:
        rows = [d for d in s.exec(select(Detection)).all() if d.asset_id in ids]
    return Counter(d.label for d in rows if d.stage == "detect"), Counter(d.label for d in rows)


def _blocked(ctx, dataset, region: str) -> None:
    with transaction(ctx.engine) as s, pytest.raises(ResidencyViolation):
        enforce_residency(
            ctx,
            s,
            point=EnforcementPoint.SYNC,
            dataset_id=dataset.id,
            target_region=region,
            actor=ACTOR,
            entity_type="destination",
            entity_id=f"dest-{region}",
        )


def test_report_counts_what_is_stored_now(ctx, dataset, session_redactor) -> None:
    ids = release_photos(ctx, dataset, session_redactor, PHOTOS)
    assert len(ids) == 2
    first_run = _detections(ctx, ids)
    assert sum(first_run[0].values()) > 0

    # re-processing under a new policy version: the same regions again, not twice as many
    bind(ctx, dataset, policy_doc("v2", retention={"originals_days": 20}))
    with transaction(ctx.engine) as s:
        plan = apply_reprocess(ctx, s, plan_reprocess(s, dataset.id), actor=ACTOR)
    assert sorted(plan.eligible) == sorted(ids)
    drain(ctx, redactor=session_redactor)
    assert _detections(ctx, ids) == first_run

    # one asset held back, then every original deleted; then a policy refusing eu-de
    with transaction(ctx.engine) as s:
        held = s.get(Asset, ids[0])
        transition(
            s,
            held,
            AssetState.QUARANTINED,
            actor=ACTOR,
            now=ctx.clock(),
            region="eu-de",
            reasons=[{"code": "test-hold", "message": "held back by the test"}],
        )
    strict = policy_doc(
        "v3", retention={"originals_days": 0}, residency={"annotation_regions": ["FR"]}
    )
    bind(ctx, dataset, strict)
    assert len(run_retention(ctx, dry_run=False).done) == 2
    _blocked(ctx, dataset, "eu-de")  # same region as the gateway: refused, not a transfer
    _blocked(ctx, dataset, "us-east-1")  # a third country: a refused Chapter V transfer

    r = generate_dataset_report(ctx, dataset.id, actor=ACTOR).report.model_dump(mode="json")
    red = r["redaction"]
    assert {c["key"]: c["count"] for c in red["regions_by_label"]} == +first_run[0]
    assert {c["key"]: c["count"] for c in red["regions_recorded"]} == +first_run[1]
    assert {c["key"]: c["count"] for c in red["assets_by_state"]} == {
        "released": 1,
        "quarantined": 1,
    }
    assert "test-hold" in {c["key"] for c in red["quarantine_reasons"]}
    assert r["incidents"]["quarantined_assets"] == 1

    retention = r["retention"]
    assert retention["originals_stored"] == 0
    assert retention["originals_deleted"] == [
        {"key": "quarantined", "count": 1},
        {"key": "released", "count": 1},
    ]
    [raw] = [
        a["answer"]
        for answers in r["datasheet"]["sections"].values()
        for a in answers
        if a["question"] == "Is the raw data kept?"
    ]
    assert raw.startswith("Encrypted originals stored now: 0 of 2 asset(s); 2 deleted")

    blocked = {t["to_region"] for t in r["residency"]["blocked_transfers"]}
    assert blocked == {"eu-de", "us-east-1"}
    chapter_v = r["processing_record"]["transfers"]
    assert [(t["to_region"], t["blocked"]) for t in chapter_v] == [("us-east-1", True)]
