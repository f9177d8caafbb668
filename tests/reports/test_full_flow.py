"""A report over a dataset that went through the flow the gateway records: ingest, redaction,
tasks sent to a Label Studio destination, annotations by two annotators (one flags a visible
face), a retention deletion and an erasure request. Every section is filled from records and
its figures are cross-checked against the database.

The Label Studio round trip itself is tested in tests/labelstudio; here the destination's
sync rows stand in for it and annotations enter through the webhook's own storing code."""

from __future__ import annotations

import json
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import select

from gateway.core.context import GatewayContext
from gateway.core.db import transaction
from gateway.core.errors import ResidencyViolation
from gateway.core.models import Asset, AssetState, AssetSync, Dataset, Destination, SyncState
from gateway.ingest import Upload, ingest_upload
from gateway.labelstudio.annotations import store_annotation
from gateway.labelstudio.client import RetryPolicy
from gateway.labelstudio.destinations import DestinationSecrets, seal_secrets
from gateway.labelstudio.removal import LabelStudioTaskRemover
from gateway.labelstudio.tables import Annotation, Incident
from gateway.lineage import Actor
from gateway.pipeline import drain
from gateway.policy.enforcement import EnforcementPoint, enforce_residency
from gateway.policy.erasure import request_erasure
from gateway.policy.retention import run_retention
from gateway.pseudonymisation.tables import VaultEntry
from gateway.redactor import IsolatedRedactor
from gateway.reports.build import gateway_public_keys, generate_dataset_report, verify_report
from gateway.reports.render import ReportFormat, render
from tests.conftest import PHOTOS, FakeClock

pytestmark = [pytest.mark.db, pytest.mark.integration]
PHOTO_SUBJECTS = {
    "masks_maksssksksss44.jpg": "subject-a",
    "masks_maksssksksss30.jpg": "subject-a",
    "dashcam_dayride_type1_001_t607.jpg": "subject-b",
}
OFFICER = Actor("cli", "officer")


def box(x: float, y: float, w: float, h: float) -> dict[str, object]:
    value = {"x": x, "y": y, "width": w, "height": h, "rectanglelabels": ["person"]}
    return {"type": "rectanglelabels", "from_name": "boxes", "to_name": "image", "value": value}


FLAG = {
    "type": "choices",
    "from_name": "privacy_flag",
    "to_name": "image",
    "value": {"choices": ["face visible"]},
}


# Label Studio is not running here: the real remover records the task as removal-pending
UNREACHABLE = LabelStudioTaskRemover(
    retry=RetryPolicy(attempts=1, first_delay=0, sleep=lambda _: None)
)


def _ingest_redact(ctx: GatewayContext, dataset: Dataset) -> dict[str, str]:
    ids = {}
    with transaction(ctx.engine) as s:
        for name, subject in PHOTO_SUBJECTS.items():
            upload = Upload(name, (PHOTOS / name).read_bytes(), subject_id=subject)
            ids[name] = ingest_upload(s, ctx, dataset, upload, actor=OFFICER).asset_id
    redactor = IsolatedRedactor(ctx.settings)
    try:
        assert drain(ctx, redactor=redactor) == 3
    finally:
        redactor.close()
    return ids


def _send_to_destination(ctx: GatewayContext, asset_ids: list[str]) -> Destination:
    destination_id = str(uuid.uuid4())
    with transaction(ctx.engine) as s:
        destination = Destination(
            id=destination_id,
            name="annotators-eu",
            url="http://127.0.0.1:9",
            region="eu-de",
            token_sealed=seal_secrets(ctx, destination_id, DestinationSecrets("t", "w")),
            master_key_id=ctx.keys.master.key_id,
            created_at=ctx.clock(),
        )
        s.add(destination)
        s.flush()
        for task_id, asset_id in enumerate(asset_ids, start=100):
            s.add(
                AssetSync(
                    asset_id=asset_id,
                    destination_id=destination_id,
                    state=SyncState.SYNCED,
                    task_id=task_id,
                    updated_at=ctx.clock(),
                )
            )
    return destination


def _annotate(
    ctx: GatewayContext, destination: Destination, tasks: dict[int, list[tuple[int, list[Any]]]]
) -> None:
    ls_id = 1
    with transaction(ctx.engine) as s:
        for task_id, by_user in tasks.items():
            for user, result in by_user:
                body = {"id": ls_id, "result": result, "completed_by": user, "task": task_id}
                store_annotation(ctx, s, destination, body, task_id=task_id)
                ls_id += 1


@pytest.mark.timeout(300)
def test_every_section_is_filled_from_records(
    ctx: GatewayContext, dataset: Dataset, clock: FakeClock, tmp_path: Path
) -> None:
    ids = _ingest_redact(ctx, dataset)
    order = list(ids.values())
    destination = _send_to_destination(ctx, order)
    _annotate(
        ctx,
        destination,
        {
            100: [(1, [box(10, 10, 20, 30)]), (2, [box(11, 10, 20, 30)])],
            101: [(1, [box(5, 5, 10, 10), box(60, 60, 10, 10)]), (2, [box(5, 5, 10, 10), FLAG])],
        },  # task 102 (subject-b's photo, erased below) is not annotated
    )
    with transaction(ctx.engine) as s, pytest.raises(ResidencyViolation):
        enforce_residency(
            ctx,
            s,
            point=EnforcementPoint.SYNC,
            dataset_id=dataset.id,
            target_region="us-east-1",
            actor=OFFICER,
            entity_type="asset",
            entity_id=order[0],
        )
    clock.advance(days=31)  # past the default policy's 30 days for originals
    retention = run_retention(ctx, dry_run=False, task_remover=UNREACHABLE)
    assert retention.done
    with transaction(ctx.engine) as s:
        outcome = request_erasure(
            ctx,
            s,
            dataset_ref=dataset.name,
            actor=OFFICER,
            subject_id="subject-b",
            task_remover=UNREACHABLE,
        )
    del outcome

    signed = generate_dataset_report(ctx, dataset.name, actor=OFFICER)
    doc = json.loads(render(signed, ReportFormat.JSON))
    verify_report(doc, gateway_public_keys(ctx))
    r = doc["report"]
    with transaction(ctx.engine) as s:
        assets = s.exec(select(Asset).where(Asset.dataset_id == dataset.id)).all()
        annotations = s.exec(select(Annotation)).all()
        incidents = s.exec(select(Incident)).all()
        vault = Counter(v.field for v in s.exec(select(VaultEntry)).all())

    assert {c["key"]: c["count"] for c in r["redaction"]["assets_by_state"]} == Counter(
        str(a.state) for a in assets
    )
    assert any(a.state == AssetState.ERASED for a in assets)
    assert r["redaction"]["regions_recorded"], "erased assets' regions stay on record"
    assert [x["name"] for x in r["processing_record"]["recipients"]] == ["annotators-eu"]
    assert r["residency"]["annotation_regions"] == [{"key": "eu-de", "count": 3}]
    [blocked] = r["residency"]["blocked_transfers"]
    assert (blocked["to_region"], blocked["point"], blocked["blocked"]) == (
        "us-east-1",
        "sync",
        True,
    )
    deletions = {e["action"]: e["count"] for e in r["retention"]["deletions"]}
    assert deletions.get("asset.original_deleted", 0) >= 1 and deletions["asset.erased"] == 1
    [erasure] = r["incidents"]["erasure_register"]
    assert erasure["assets_erased"] == 1 and erasure["recipients_notified"] == 1
    assert {e["action"] for e in r["retention"]["erasure_requests"]} >= {"erasure.requested"}
    assert len(r["incidents"]["incidents"]) == len(incidents) == 1
    assert r["incidents"]["incidents"][0]["kind"] == "annotator_leak_flag"
    # retention deleted the flagged asset's original since: it is still held back
    assert r["incidents"]["quarantined_assets"] == 1

    [pseudonymisation] = [
        m for m in r["processing_record"]["security_measures"] if "Pseudonymisation" in m["measure"]
    ]
    assert vault and all(f"{k}: {n}" in pseudonymisation["evidence"] for k, n in vault.items())

    q = r["annotation_quality"]
    assert q["annotations"] == len(annotations) == 4
    assert sorted(c["count"] for c in q["per_annotator"]) == [2, 2]
    annotators = {a.annotator for a in annotations}
    assert {c["key"] for c in q["per_annotator"]} == annotators
    assert all("@" not in a and a not in ("1", "2") for a in annotators)  # pseudonyms only
    # two images, both annotators: 5 boxes, 2 matched pairs (IoU 570/630, 1)
    assert (q["box_comparisons"], q["box_matched_pairs"]) == (2, 2)
    assert q["box_f1"] == f"{4 / 5:.4f}"
    assert q["box_mean_iou"] == f"{(1 + 19 * 30 / (21 * 30)) / 2:.4f}"
    assert (q["assets_with_overlap"], q["overlap_coverage"]) == (2, "1.0000")
    assert {c["key"]: c["count"] for c in q["label_distribution"]} == {"person": 5}

    text = json.dumps(doc)
    for subject in PHOTO_SUBJECTS.values():
        assert subject not in text
    for name in PHOTO_SUBJECTS:
        assert name not in text
    html = render(signed, ReportFormat.HTML).decode()
    assert "Nothing recorded yet: no annotation" not in html
    assert "annotator_leak_flag" in html and "us-east-1" in html
    pdf = render(signed, ReportFormat.PDF)
    assert pdf.startswith(b"%PDF")
    (tmp_path / "report.pdf").write_bytes(pdf)  # kept in pytest's temp dir for a look
