"""Where a governance report leaves the gateway: the one way from a signed report to the bytes
a file, an API response or the demo's folder receives.

`report_bytes` is the sink: it requires the export `Clearances` of every dataset the report
covers (`gateway.reports.build.cleared_*`, from `enforce_residency(point=EXPORT)`) for the
region the bytes go to, and refuses with `ClearanceMismatch` (403) before anything is rendered
otherwise. The CLI, the API and the demo call `export_dataset_report` or
`export_processing_activities` (a test over the syntax tree holds them to it: nothing else in
the gateway renders a report).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from gateway.core.clearance import Clearances, EnforcementPoint
from gateway.core.context import GatewayContext
from gateway.lineage import Actor
from gateway.reports.build import (
    ClearedReport,
    cleared_dataset_report,
    cleared_processing_activities,
)
from gateway.reports.model import GovernanceReport, SignedReport
from gateway.reports.render import ReportFormat, render


@dataclass(frozen=True, slots=True)
class ExportedReport:
    """The rendered report (`body`, in `fmt`) and the signed document it renders."""

    signed: SignedReport
    fmt: ReportFormat
    body: bytes

    def write(self, path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(self.body)
        return path


def covered_datasets(signed: SignedReport) -> list[str]:
    """The datasets whose data a report carries."""
    report = signed.report
    if isinstance(report, GovernanceReport):
        return [report.dataset.id]
    return [d.id for d in report.datasets]


def report_bytes(
    signed: SignedReport, fmt: ReportFormat, *, clearances: Clearances, to_region: str
) -> bytes:
    """Render a report for export to `to_region`, refused unless `clearances` cover the
    export of every dataset it carries there."""
    for dataset_id in covered_datasets(signed):
        clearances.require(EnforcementPoint.EXPORT, dataset_id=dataset_id, region=to_region)
    return render(signed, fmt)


def _exported(ctx: GatewayContext, cleared: ClearedReport, fmt: ReportFormat) -> ExportedReport:
    # a report is exported into this gateway's own region: the operator's or the caller's hands
    body = report_bytes(
        cleared.signed, fmt, clearances=cleared.clearances, to_region=ctx.settings.region
    )
    return ExportedReport(cleared.signed, fmt, body)


def export_dataset_report(
    ctx: GatewayContext,
    dataset_ref: str,
    fmt: ReportFormat,
    *,
    actor: Actor,
    start: datetime | None = None,
    end: datetime | None = None,
) -> ExportedReport:
    cleared = cleared_dataset_report(ctx, dataset_ref, actor=actor, start=start, end=end)
    return _exported(ctx, cleared, fmt)


def export_processing_activities(
    ctx: GatewayContext,
    fmt: ReportFormat,
    *,
    actor: Actor,
    start: datetime | None = None,
    end: datetime | None = None,
) -> ExportedReport:
    cleared = cleared_processing_activities(ctx, actor=actor, start=start, end=end)
    return _exported(ctx, cleared, fmt)
