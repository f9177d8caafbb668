"""The review, residual-leak, Art. 25 and DPIA sections of a real report, from review rows in
the database: figures checked against closed forms, signed, rendered as HTML and PDF."""

from __future__ import annotations

import io
import json
import math
import uuid

import pytest
from pypdf import PdfReader

from gateway.core.db import transaction
from gateway.ingest import Upload, ingest_upload
from gateway.labelstudio.annotation_store import HeldAnnotation
from gateway.lineage import Actor
from gateway.reports.build import gateway_public_keys, generate_dataset_report, verify_report
from gateway.reports.calibration import build_batch
from gateway.reports.embedded import visible_text
from gateway.reports.render import ReportFormat, render
from gateway.reports.verify import verify_report_file
from gateway.review.calibration import close_calibration, open_calibration
from gateway.review.labelconfig import ManualBox, ReviewAnswer
from gateway.review.models import ReviewDecision, ReviewItem
from tests.conftest import PHOTOS
from tests.policy.helpers import bind, policy_doc
from tests.review.test_calibration_items import _items, _review_destination

pytestmark = [pytest.mark.db]
ACTOR = Actor("cli", "officer")


def _ingest(ctx, dataset, name: str) -> str:
    with transaction(ctx.engine) as s:
        upload = Upload(name, (PHOTOS / name).read_bytes())
        return ingest_upload(s, ctx, dataset, upload, actor=Actor("cli", "t")).asset_id


def _item(ctx, dataset, asset_id: str, version: str | None, **fields) -> ReviewItem:
    decided = fields.pop("decision", "released")
    return ReviewItem(
        id=str(uuid.uuid4()),
        dataset_id=dataset.id,
        asset_id=asset_id,
        opened_at=ctx.clock(),
        decided_at=ctx.clock() if decided else None,
        decision=decided,
        reviewer="pn:reviewer" if decided else None,
        policy_version_id=version,
        **fields,
    )


def _fill(ctx, dataset) -> dict[str, str]:
    """Two policy versions; 31 + 20 sampled reviews (one face found under v1), a quarantine,
    an ignored decision and a calibration batch where the reviewer found all but one face."""
    v1 = bind(ctx, dataset, policy_doc("street")).version.id
    a1 = _ingest(ctx, dataset, "masks_maksssksksss44.jpg")
    v2 = bind(ctx, dataset, policy_doc("street", retention={"originals_days": 7})).version.id
    a2 = _ingest(ctx, dataset, "masks_maksssksksss79.jpg")
    rows = [
        *(_item(ctx, dataset, a1, v1, reason="sampled", lead_time_seconds=float(s))
          for s in range(30)),
        _item(ctx, dataset, a1, v1, reason="sampled", findings={"face": 1, "plate": 0}),
        *(_item(ctx, dataset, a2, v2, reason="sampled", lead_time_seconds=4.0) for _ in range(20)),
        _item(ctx, dataset, a2, v2, reason="sampled", decision="ignored", findings={"face": 3}),
        _item(ctx, dataset, a2, v2, reason="quarantined", decision=None),
    ]  # fmt: skip
    with transaction(ctx.engine) as s:
        s.add_all(rows)
    # the calibration batch through the review loop's path; the reviewer misses one face
    _review_destination(ctx, dataset)
    open_calibration(ctx, dataset.id, seed=5, actor=ACTOR)
    plans = {p.photo: p for p in build_batch(seed=5).items}
    planted = [(i, plans[i.details["calibration"]["photo"]]) for i in _items(ctx, dataset)]
    planted = [(i, p) for i, p in planted if p.visible]
    for n, (item, plan) in enumerate(planted):
        boxes = plan.visible[1:] if n == 0 else plan.visible
        answer = ReviewAnswer(ReviewDecision.RELEASED, tuple(ManualBox("face", *b) for b in boxes))
        held = HeldAnnotation(ls_id=n + 1, task_id=n + 1, result=[], was_cancelled=False,
                              completed_by=5)  # fmt: skip
        close_calibration(ctx, item, held, "pn:reviewer", answer, 6.0)
    return {"v1": v1, "v2": v2, "planted": str(sum(len(p.visible) for _, p in planted))}


def _figure(review: dict, label: str, version: str) -> dict:
    return next(
        f for f in review["residual_leak"] if f["label"] == label and f["policy_version"] == version
    )


@pytest.mark.timeout(180)
def test_review_sections_are_filled_from_records(ctx, dataset, tmp_path) -> None:
    filled = _fill(ctx, dataset)
    signed = generate_dataset_report(ctx, dataset.id, actor=ACTOR)
    doc = json.loads(render(signed, ReportFormat.JSON))
    verify_report(doc, gateway_public_keys(ctx))  # the new sections are under the signature
    review = doc["report"]["review"]

    counts = {c["key"]: c["count"] for c in review["items_by_reason"]}
    assert counts == {
        "sampled": 51,
        "quarantined": 1,
        "calibration": len(build_batch(seed=5).items),
    }
    assert doc["report"]["redaction"]["assets_total"] == 2  # the calibration images are not data
    assert {c["key"]: c["count"] for c in review["decisions"]}["ignored"] == 1
    face_all = _figure(review, "face", "all")
    assert (face_all["samples"], face_all["findings"]) == (51, 1)
    plate_v2 = _figure(review, "plate", "street v2")
    assert (plate_v2["samples"], plate_v2["findings"]) == (20, 0)  # the ignored row is not one
    assert float(plate_v2["upper_bound_95"]) == pytest.approx(1 - 0.05 ** (1 / 20), abs=1e-4)
    assert float(plate_v2["upper_bound_95"]) >= 1 - 0.05 ** (1 / 20)  # rounded up, never down
    assert plate_v2["samples_needed"] == 598 == review["samples_needed_without_findings"]
    assert _figure(review, "face", "street v1")["findings"] == 1

    recall = review["reviewer_recall"]
    planted = int(filled["planted"])
    assert (recall["planted"], recall["found"]) == (planted, planted - 1)
    assert review["bound_kind"].startswith("corrected for measured reviewer recall")
    assert review["corrected_upper_bound"] is not None

    times = {t["reason"]: t for t in review["review_time"]}
    assert (times["sampled"]["tasks"], times["sampled"]["median_seconds"]) == (50, "4.0")
    assert times["sampled"]["p90_seconds"] == f"{sorted([*range(30), *[4] * 20])[44]:.1f}"

    design = doc["report"]["gdpr_design"]
    measures = {m["measure"]: m["evidence"] for m in design["article_25"]}
    human = measures["Human review and measured residual leak (Art. 25(1))"]
    assert "sampled: 51" in human and "1 of 51" in human and "sample_rate: 0" in human
    assert [i["reference"] for i in design["dpia_inputs"]] == [
        "Art. 35(7)(a)",
        "Art. 35(7)(b)",
        "Art. 35(7)(c)",
        "Art. 35(7)(d)",
    ]
    risks = design["dpia_inputs"][2]["findings"]
    assert risks[0].startswith("Residual leak: all policy versions: 1 of 51")

    html = render(signed, ReportFormat.HTML)
    (tmp_path / "report.html").write_bytes(html)  # kept under pytest's basetemp, to look at
    text = visible_text(html.decode())
    headline = _figure(review, "any", "all")["statement"]
    for wanted in ("Human review and residual leak", "Art. 35(7)(c)", headline):
        assert wanted in text
    pdf_bytes = render(signed, ReportFormat.PDF)
    (tmp_path / "report.pdf").write_bytes(pdf_bytes)
    for name in ("report.html", "report.pdf"):  # the page re-renders from the signed JSON
        assert verify_report_file(tmp_path / name, keys=gateway_public_keys(ctx)).report == (
            signed.report
        )
    pdf = PdfReader(io.BytesIO(pdf_bytes))
    pdf_text = " ".join(page.extract_text() for page in pdf.pages)
    assert "Human review and residual leak" in pdf_text and "Art. 35(7)" in pdf_text


def test_without_reviews_the_report_says_so(ctx, dataset) -> None:
    doc = json.loads(
        render(generate_dataset_report(ctx, dataset.id, actor=ACTOR), ReportFormat.JSON)
    )
    review = doc["report"]["review"]
    assert review["residual_leak"] == [] and review["reviewer_recall"] is None
    assert review["bound_kind"].startswith("lower bound: reviewer recall is not calibrated")
    risks = doc["report"]["gdpr_design"]["dpia_inputs"][2]["findings"]
    assert "not estimated" in risks[0] and "598" in risks[0]
    assert math.isclose(float(review["target_bound"]), 0.005)
