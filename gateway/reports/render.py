"""Render a signed report as JSON, HTML (Jinja2) or PDF (WeasyPrint from the same HTML)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from importlib import resources

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from gateway.reports.embedded import ATTACHMENT_NAME, script_json
from gateway.reports.model import GovernanceReport, SignedReport
from gateway.vocabulary import ReportFormat as ReportFormat  # the CLI needs it without Jinja2

MEDIA_TYPES = {
    ReportFormat.JSON: "application/json",
    ReportFormat.HTML: "text/html; charset=utf-8",
    ReportFormat.PDF: "application/pdf",
}


def when(value: str | None) -> str:
    """An ISO 8601 timestamp as a reader wants it: '2026-02-15 09:00:00 UTC' (the JSON keeps
    the full precision)."""
    if not value:
        return ""
    moment = datetime.fromisoformat(value).astimezone(UTC)
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC")


def _environment() -> Environment:
    env = Environment(
        loader=PackageLoader("gateway.reports", "templates"),
        autoescape=select_autoescape(["html", "j2"]),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["when"] = when
    return env


def to_json(signed: SignedReport) -> bytes:
    """The signed document as written to disk: stable key order, UTF-8, final newline."""
    return (
        json.dumps(signed.model_dump(mode="json"), indent=2, ensure_ascii=False) + "\n"
    ).encode()


def to_html(signed: SignedReport) -> str:
    """The page, with the signed JSON embedded in a script block (what `verify` checks)."""
    report = signed.report
    css = resources.files("gateway.reports").joinpath("templates/report.css").read_text("utf-8")
    common = {"signature": signed.signature, "css": css, "embedded": script_json(to_json(signed))}
    if isinstance(report, GovernanceReport):
        template = _environment().get_template("report.html.j2")
        from gateway.reports.charts import charts  # matplotlib: only when a chart is drawn

        return template.render(r=report, charts=charts(report), **common)
    template = _environment().get_template("activities.html.j2")
    return template.render(r=report, **common)


def to_pdf(signed: SignedReport) -> bytes:
    """The same page as PDF, with the signed JSON attached as a file (what `verify` checks)."""
    from weasyprint import HTML, Attachment  # type: ignore[import-untyped]  # heavy: PDFs only

    attachment = Attachment(
        string=to_json(signed).decode("utf-8"),
        name=ATTACHMENT_NAME,
        description="the signed governance report (JSON); verify with privacy-gateway verify",
    )
    pdf: bytes = HTML(string=to_html(signed)).write_pdf(attachments=[attachment])
    return pdf


def render(signed: SignedReport, fmt: ReportFormat) -> bytes:
    if fmt is ReportFormat.JSON:
        return to_json(signed)
    if fmt is ReportFormat.HTML:
        return to_html(signed).encode()
    return to_pdf(signed)
