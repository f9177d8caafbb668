"""A report from a real ingested and redacted dataset: every figure cross-checked against the
database, the signature verified and broken, HTML and PDF rendered."""

from __future__ import annotations

import copy
import io
import json
from collections import Counter

import pytest
from sqlmodel import select

from gateway.core.db import transaction
from gateway.core.errors import IntegrityFailure
from gateway.core.models import Asset, Detection, LineageRecord
from gateway.ingest import Upload, ingest_upload
from gateway.lineage import Actor
from gateway.lineage.tables import LineageSigningKey
from gateway.pipeline import drain
from gateway.redactor import IsolatedRedactor
from gateway.reports.build import gateway_public_keys, generate_dataset_report, verify_report
from gateway.reports.render import ReportFormat, render
from gateway.reports.schema import SCHEMA_FILE
from tests.conftest import PHOTOS

pytestmark = [pytest.mark.db, pytest.mark.integration]
FACES = "masks_maksssksksss44.jpg"
PLATES = "dashcam_dayride_type1_001_t607.jpg"
SUBJECT = "alice@example.org"
ACTOR = Actor("cli", "officer")


def _ingest_and_redact(ctx, dataset) -> None:
    uploads = [
        Upload(FACES, (PHOTOS / FACES).read_bytes(), subject_id=SUBJECT),
        Upload(PLATES, (PHOTOS / PLATES).read_bytes(), subject_id=SUBJECT),
        Upload("broken.jpg", b"\xff\xd8\xff\xe0 this is not a JPEG", subject_id=SUBJECT),
    ]
    with transaction(ctx.engine) as s:
        for upload in uploads:
            ingest_upload(s, ctx, dataset, upload, actor=Actor("cli", "t"))
    redactor = IsolatedRedactor(ctx.settings)
    try:
        assert drain(ctx, redactor=redactor) == 2
    finally:
        redactor.close()


def _database_figures(ctx, dataset_id: str) -> dict[str, Counter[str]]:
    with transaction(ctx.engine) as s:
        assets = s.exec(select(Asset).where(Asset.dataset_id == dataset_id)).all()
        ids = {a.id for a in assets}
        detections = [d for d in s.exec(select(Detection)).all() if d.asset_id in ids]
    return {
        "states": Counter(str(a.state) for a in assets),
        "regions": Counter(d.label for d in detections if d.stage == "detect"),
        "leak": Counter(d.label for d in detections if d.stage == "leak_check"),
    }


def _counts(items: list[dict[str, object]]) -> Counter[str]:
    return Counter({str(i["key"]): int(i["count"]) for i in items})  # type: ignore[call-overload]


@pytest.mark.timeout(300)
def test_report_on_a_redacted_dataset(ctx, dataset) -> None:
    _ingest_and_redact(ctx, dataset)
    signed = generate_dataset_report(ctx, dataset.name, actor=ACTOR)
    doc = json.loads(render(signed, ReportFormat.JSON))
    report = doc["report"]

    # every figure is the database's
    db = _database_figures(ctx, dataset.id)
    red = report["redaction"]
    assert _counts(red["assets_by_state"]) == db["states"]
    assert db["states"] == Counter({"released": 2, "rejected": 1})
    assert _counts(red["regions_by_label"]) == db["regions"]
    assert db["regions"]["face"] >= 1 and db["regions"]["plate"] >= 1
    assert _counts(red["leak_check_by_label"]) == db["leak"]
    assert _counts(red["regions_recorded"]) == db["regions"] + db["leak"]  # lineage agrees
    assert red["assets_total"] == 3 and red["assets_with_regions"] == 2
    assert red["tools"] and red["redaction_policy_digests"]
    assert [c["key"] for c in red["rejection_reasons"]] != []
    assert report["dataset"]["id"] == dataset.id
    assert report["dataset"]["legal_basis_reference"].startswith("GDPR Art. 6(1)(f)")
    assert report["lineage"]["verified"] is True
    with transaction(ctx.engine) as s:
        keys = s.exec(select(LineageSigningKey)).all()
        n_records = len(s.exec(select(LineageRecord)).all())
    assert {k["fingerprint"] for k in report["lineage"]["signing_keys"]} == {
        k.fingerprint for k in keys
    }
    assert report["lineage"]["records_verified"] <= n_records
    assert report["residency"]["storage_regions"] == [{"key": "eu-de", "count": 2}]

    # wording: pseudonymised, never anonymised; no direct identifier leaks into the report
    text = json.dumps(doc)
    assert SUBJECT not in text and FACES not in text
    assert "pseudonymises them" in report["statements"][0]
    assert "anonymous" not in text.lower()
    assert report["annotation_quality"] is None  # nothing came back from Label Studio

    # the signature holds, and breaks on any change
    keys_by_id = gateway_public_keys(ctx)
    assert verify_report(doc, keys_by_id).report.report_id == report["report_id"]
    tampered = copy.deepcopy(doc)
    tampered["report"]["redaction"]["regions_by_label"][0]["count"] += 1
    with pytest.raises(IntegrityFailure):
        verify_report(tampered, keys_by_id)
    forged = copy.deepcopy(doc)
    forged["signature"]["signature"] = doc["signature"]["signature"][::-1]
    with pytest.raises(IntegrityFailure):
        verify_report(forged, keys_by_id)

    # the JSON matches the published schema
    jsonschema = pytest.importorskip("jsonschema")
    jsonschema.validate(doc, json.loads(SCHEMA_FILE.read_text()))

    # generating the report is itself recorded
    with transaction(ctx.engine) as s:
        generated = s.exec(
            select(LineageRecord).where(LineageRecord.action == "report.generated")
        ).all()
    assert [r.entity_id for r in generated] == [report["report_id"]]

    _check_html_and_pdf(signed, dataset.name)


def _check_html_and_pdf(signed, name: str) -> None:
    html = render(signed, ReportFormat.HTML).decode()
    assert name in html and "data:image/svg+xml;base64," in html
    assert "Nothing recorded yet: no annotation has come back from Label Studio" in html
    assert "Art. 10(2)(h)" in html and "Annex IV" in html and "Art. 12" in html
    pdf = render(signed, ReportFormat.PDF)
    assert pdf.startswith(b"%PDF")
    pypdf = pytest.importorskip("pypdf")
    reader = pypdf.PdfReader(io.BytesIO(pdf))
    text = " ".join(page.extract_text() for page in reader.pages)
    assert name in text
    assert "pseudonymises" in text
    assert len(reader.pages) >= 3
