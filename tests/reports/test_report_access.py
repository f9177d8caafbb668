"""Reports through the CLI and the API: formats, periods, roles, offline verification."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from gateway.cli import app as cli_app
from gateway.core.db import transaction
from gateway.core.errors import IntegrityFailure, InvalidRequest
from gateway.core.models import Role
from gateway.ingest import Upload, ingest_upload
from gateway.lineage import Actor
from gateway.main import create_app
from gateway.pipeline import NotBuiltRedactor
from gateway.reports.build import (
    gateway_public_keys,
    generate_dataset_report,
    generate_processing_activities,
    verify_report,
)
from gateway.reports.schema import SCHEMA_FILE, schema_text
from tests.conftest import DATASET_SPEC, PHOTOS
from tests.gateway.test_api import auth, make_key

pytestmark = pytest.mark.db
ACTOR = Actor("cli", "officer")


def test_exported_schema_is_current() -> None:
    assert SCHEMA_FILE.read_text() == schema_text(), "run: python -m gateway.reports.schema"


def _ingest(ctx, dataset, name: str) -> None:
    with transaction(ctx.engine) as s:
        ingest_upload(
            s, ctx, dataset, Upload(name, (PHOTOS / name).read_bytes()), actor=Actor("cli", "t")
        )


def test_empty_dataset_report_says_nothing_was_recorded(ctx, dataset) -> None:
    report = generate_dataset_report(ctx, dataset.id, actor=ACTOR).report
    assert report.redaction.assets_total == 0  # type: ignore[union-attr]
    assert report.annotation_quality is None  # type: ignore[union-attr]
    from gateway.reports.render import ReportFormat, render

    html = render(generate_dataset_report(ctx, dataset.id, actor=ACTOR), ReportFormat.HTML)
    for absent in ("no asset", "no region was redacted", "no erasure request", "no incident"):
        assert f"Nothing recorded yet: {absent}" in html.decode()


def test_period_limits_what_is_counted(ctx, dataset, clock) -> None:
    _ingest(ctx, dataset, "masks_maksssksksss44.jpg")
    clock.advance(days=10)
    middle = clock.now
    clock.advance(days=10)
    _ingest(ctx, dataset, "masks_maksssksksss30.jpg")
    full = generate_dataset_report(ctx, dataset.id, actor=ACTOR).report
    late = generate_dataset_report(ctx, dataset.id, actor=ACTOR, start=middle).report
    early = generate_dataset_report(ctx, dataset.id, actor=ACTOR, end=middle).report
    assert full.redaction.assets_total == 2  # type: ignore[union-attr]
    assert late.redaction.assets_total == 1 and early.redaction.assets_total == 1  # type: ignore[union-attr]
    assert late.period.start == middle.isoformat() and late.period.end is None
    with pytest.raises(InvalidRequest):
        generate_dataset_report(ctx, dataset.id, actor=ACTOR, start=middle, end=middle)


def test_processing_activities_cover_every_dataset(ctx, dataset) -> None:
    from gateway.datasets import DatasetSpec, create_dataset

    with transaction(ctx.engine) as s:
        create_dataset(
            s, ctx, DatasetSpec.model_validate(DATASET_SPEC | {"name": "second"}), actor=ACTOR
        )
    signed = generate_processing_activities(ctx, actor=ACTOR)
    names = [d.name for d in signed.report.datasets]  # type: ignore[union-attr]
    assert names == ["second", dataset.name]
    doc = signed.model_dump(mode="json")
    assert verify_report(doc, gateway_public_keys(ctx)).report.report_schema.startswith(
        "lpg.processing-activities"
    )


@pytest.fixture
def cli_env(ctx, settings, monkeypatch) -> None:
    monkeypatch.setenv("GATEWAY_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("GATEWAY_DATABASE_URL", settings.resolved_database_url)
    assert settings.master_key is not None
    monkeypatch.setenv("GATEWAY_MASTER_KEY", settings.master_key.get_secret_value())


def test_cli_writes_each_format_and_verifies_offline(cli_env, dataset, tmp_path) -> None:
    del cli_env
    runner = CliRunner()
    for fmt in ("json", "html", "pdf"):
        out = tmp_path / f"r.{fmt}"
        result = runner.invoke(
            cli_app, ["report", dataset.name, "--format", fmt, "--output", str(out)]
        )
        assert result.exit_code == 0, result.output
        assert out.stat().st_size > 1000
    assert (tmp_path / "r.pdf").read_bytes().startswith(b"%PDF")
    report_file = tmp_path / "r.json"
    live = runner.invoke(cli_app, ["report-verify", str(report_file)])
    assert live.exit_code == 0 and "signature valid" in live.output
    fingerprint = json.loads(report_file.read_text())["report"]["lineage"]["signing_keys"][0]
    offline = runner.invoke(
        cli_app,
        ["verify", "--report", str(report_file), "--fingerprint", fingerprint["fingerprint"]],
    )
    assert offline.exit_code == 0, offline.output
    pem = tmp_path / "lineage.pem"
    assert runner.invoke(cli_app, ["lineage", "public-key", "--output", str(pem)]).exit_code == 0
    pinned = runner.invoke(cli_app, ["report-verify", str(report_file), "--trusted-key", str(pem)])
    assert pinned.exit_code == 0, pinned.output
    _tamper(report_file)
    broken = runner.invoke(cli_app, ["verify", "--report", str(report_file)])
    assert broken.exit_code != 0 and isinstance(broken.exception, IntegrityFailure)
    wrong_pin = runner.invoke(cli_app, ["report-verify", str(report_file), "--fingerprint", "00"])
    assert isinstance(wrong_pin.exception, IntegrityFailure)


def test_cli_needs_a_dataset_or_all(cli_env, dataset, tmp_path) -> None:
    del cli_env, dataset
    result = CliRunner().invoke(cli_app, ["report", "--output", str(tmp_path / "x.json")])
    assert isinstance(result.exception, InvalidRequest)
    every = CliRunner().invoke(
        cli_app, ["report", "--all", "--output", str(tmp_path / "a.html"), "--format", "html"]
    )
    assert every.exit_code == 0, every.output
    assert "Record of processing activities" in (tmp_path / "a.html").read_text()


def _tamper(path: Path) -> None:
    doc = json.loads(path.read_text())
    doc["report"]["dataset"]["controller"] = "Someone Else"
    path.write_text(json.dumps(doc))


@pytest.fixture
def client(ctx, settings) -> Iterator[TestClient]:
    app = create_app(settings, ctx=ctx, redactor_factory=NotBuiltRedactor)
    with TestClient(app) as c:
        yield c


def test_api_report_needs_the_compliance_role_and_scope(client, ctx, dataset) -> None:
    url = f"/v1/datasets/{dataset.id}/report"
    for role in (Role.ADMIN, Role.INGEST, Role.ML):
        r = client.get(url, headers=auth(make_key(ctx, role)))
        assert r.status_code == 403, role
        assert r.headers["content-type"] == "application/problem+json"
    assert client.get(url).status_code == 401
    officer = make_key(ctx, Role.COMPLIANCE)
    r = client.get(url, headers=auth(officer))
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    verify_report(r.json(), gateway_public_keys(ctx))
    pdf = client.get(url, params={"format": "pdf"}, headers=auth(officer))
    assert pdf.headers["content-type"] == "application/pdf" and pdf.content.startswith(b"%PDF")
    html = client.get(url, params={"format": "html", "from": "2026-01-01"}, headers=auth(officer))
    assert html.status_code == 200 and "text/html" in html.headers["content-type"]
    elsewhere = make_key(ctx, Role.COMPLIANCE, scope=["another-dataset"])
    assert client.get(url, headers=auth(elsewhere)).status_code == 404
    bad = client.get(url, params={"format": "docx"}, headers=auth(officer))
    assert bad.status_code == 422


def test_api_processing_activities_need_an_unscoped_key(client, ctx, dataset) -> None:
    url = "/v1/reports/processing-activities"
    scoped = make_key(ctx, Role.COMPLIANCE, scope=[dataset.id])
    assert client.get(url, headers=auth(scoped)).status_code == 403
    r = client.get(url, headers=auth(make_key(ctx, Role.COMPLIANCE)))
    assert r.status_code == 200
    assert [d["id"] for d in r.json()["report"]["datasets"]] == [dataset.id]
    expired = make_key(ctx, Role.COMPLIANCE, expires_at=ctx.clock() - timedelta(days=1))
    assert client.get(url, headers=auth(expired)).status_code == 401
