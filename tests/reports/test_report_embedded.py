"""`report --format html|pdf` embeds the signed JSON (a script block, a PDF attachment), and
`verify --report` checks what the file embeds: a typed error, never a traceback, for a
tampered page, a tampered or float-holding embedded report."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from gateway.core.errors import IntegrityFailure
from gateway.lineage import Actor
from gateway.reports.build import gateway_public_keys, generate_dataset_report
from gateway.reports.embedded import from_html, from_pdf
from gateway.reports.render import ReportFormat, render, to_json
from gateway.reports.verify import verify_report_file

pytestmark = [pytest.mark.db]
ACTOR = Actor("cli", "officer")


@pytest.fixture
def signed(ctx, dataset):
    return generate_dataset_report(ctx, dataset.id, actor=ACTOR)


def _cli(ctx, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "GATEWAY_DATA_DIR": str(ctx.settings.data_dir),
        "GATEWAY_DATABASE_URL": ctx.settings.resolved_database_url,
        "GATEWAY_MASTER_KEY": ctx.settings.master_key.get_secret_value(),
    }
    return subprocess.run(
        [sys.executable, "-m", "gateway", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        stdin=subprocess.DEVNULL,
    )


def test_html_and_pdf_embed_the_signed_json_and_verify(ctx, signed, tmp_path) -> None:
    keys = gateway_public_keys(ctx)
    expected = json.loads(to_json(signed))
    html = render(signed, ReportFormat.HTML)
    pdf = render(signed, ReportFormat.PDF)
    assert from_html(html.decode()) == expected and from_pdf(pdf) == expected
    (tmp_path / "r.html").write_bytes(html)
    (tmp_path / "r.pdf").write_bytes(pdf)
    for name in ("r.html", "r.pdf"):
        verified = verify_report_file(tmp_path / name, keys=keys)
        assert verified.report.report_id == signed.report.report_id
    result = _cli(ctx, "verify", "--report", str(tmp_path / "r.pdf"))
    assert result.returncode == 0, result.stderr
    assert f"report signature valid: {signed.report.report_id}" in result.stdout

    # the page's visible text edited: refused, although the embedded JSON is intact
    edited = html.decode().replace(signed.report.dataset.name, "another dataset", 1)
    (tmp_path / "edited.html").write_text(edited)
    with pytest.raises(IntegrityFailure, match="page's text"):
        verify_report_file(tmp_path / "edited.html", keys=keys)


def test_a_tampered_or_float_holding_embedded_report_is_a_typed_error(
    ctx, signed, tmp_path
) -> None:
    keys = gateway_public_keys(ctx)
    html = render(signed, ReportFormat.HTML).decode()
    report_id = signed.report.report_id
    forged_id = report_id[:-1] + ("0" if report_id[-1] != "0" else "1")
    (tmp_path / "tampered.html").write_text(html.replace(report_id, forged_id))
    with pytest.raises(IntegrityFailure):
        verify_report_file(tmp_path / "tampered.html", keys=keys)
    document = json.loads(to_json(signed))
    document["report"]["assets_total_ratio"] = 0.5  # a float: never in a signed report
    (tmp_path / "float.json").write_text(json.dumps(document))
    with pytest.raises(IntegrityFailure, match="float"):
        verify_report_file(tmp_path / "float.json", keys=keys)
    (tmp_path / "two.html").write_text(html.replace("</body>", html[html.index("<script") :]))
    with pytest.raises(IntegrityFailure, match="2 embedded"):
        verify_report_file(tmp_path / "two.html", keys=keys)

    # the CLI: one line and an exit code, no traceback
    result = _cli(ctx, "verify", "--report", str(tmp_path / "float.json"))
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith("error [integrity-failure]: ") and "float" in result.stderr
