"""The demo's last step: the dataset's governance report in every format."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console

from gateway.core.context import GatewayContext
from gateway.lineage import Actor
from gateway.reports.build import cleared_dataset_report
from gateway.reports.export import report_bytes
from gateway.reports.render import ReportFormat


def write_demo_reports(
    ctx: GatewayContext, dataset_name: str, data_dir: Path, *, out: Console
) -> list[Path]:
    cleared = cleared_dataset_report(ctx, dataset_name, actor=Actor("cli", "demo"))
    signed = cleared.signed
    written = []
    for fmt in ReportFormat:  # one report, cleared once, exported in every format
        body = report_bytes(
            signed, fmt, clearances=cleared.clearances, to_region=ctx.settings.region
        )
        path = data_dir / f"governance-report.{fmt.value}"
        path.write_bytes(body)
        written.append(path)
    out.print(
        f"governance report, signed by {signed.signature.key_id}: "
        + ", ".join(str(p) for p in written)
    )
    out.print(f"check it: GATEWAY_DATA_DIR={data_dir} privacy-gateway verify --report {written[0]}")
    return written
