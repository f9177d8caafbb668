"""`privacy-gateway report` and `report-verify`: governance reports for compliance officers."""

# deferred imports: a command imports what it runs inside its function, so that `--help`
# and every other command start without loading the service, the ORM or the models.
from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from gateway.cli.common import CLI_ACTOR_ID, JsonFlag, opened, out, print_json
from gateway.vocabulary import ReportFormat

app = typer.Typer()  # merged into the root app by gateway.cli.root

DATE_FORMATS = ["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M:%S%z"]


def _utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


@app.command()
def report(
    dataset: Annotated[
        str | None, typer.Argument(help="dataset name or id; omit with --all")
    ] = None,
    output: Annotated[Path, typer.Option(help="file to write", dir_okay=False)] = Path(
        "report.json"
    ),
    fmt: Annotated[ReportFormat, typer.Option("--format", help="json | html | pdf")] = (
        ReportFormat.JSON
    ),
    start: Annotated[
        datetime | None, typer.Option("--from", formats=DATE_FORMATS, help="period start (UTC)")
    ] = None,
    end: Annotated[
        datetime | None, typer.Option("--to", formats=DATE_FORMATS, help="period end, exclusive")
    ] = None,
    all_datasets: Annotated[
        bool, typer.Option("--all", help="record of processing activities over every dataset")
    ] = False,
) -> None:
    """Generate a signed governance report (JSON is the source of truth; HTML/PDF render it
    and embed it: a script block in the HTML, an attached file in the PDF)."""
    from gateway.core.errors import InvalidRequest
    from gateway.lineage.ledger import Actor
    from gateway.reports.export import export_dataset_report, export_processing_activities

    if (dataset is None) == (not all_datasets):
        raise InvalidRequest("name one DATASET, or pass --all for every dataset")
    actor = Actor("cli", CLI_ACTOR_ID)
    with opened() as ctx:
        if dataset is not None:
            exported = export_dataset_report(
                ctx, dataset, fmt, actor=actor, start=_utc(start), end=_utc(end)
            )
        else:
            exported = export_processing_activities(
                ctx, fmt, actor=actor, start=_utc(start), end=_utc(end)
            )
    exported.write(output)
    signed = exported.signed
    out.print(
        f"wrote {fmt.value} report {signed.report.report_id} to {output} "
        f"(signed by {signed.signature.key_id})"
    )


@app.command("report-verify")
def report_verify(
    path: Annotated[
        Path,
        typer.Argument(exists=True, dir_okay=False, help="a report: JSON, or HTML/PDF from it"),
    ],
    trusted_key: Annotated[list[Path] | None, typer.Option(help="PEM public key you trust")] = None,
    fingerprint: Annotated[list[str] | None, typer.Option(help="SHA-256 key fingerprint")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Check a report's signature (a JSON report, or the one an HTML or PDF report embeds):
    offline against a key or fingerprint you trust, or (with neither) against this gateway's
    lineage keys. An HTML page's text must also be what the signed report renders to."""
    from gateway.lineage.format.keys import load_anchor
    from gateway.reports.build import gateway_public_keys
    from gateway.reports.verify import anchored_keys, load_document, verify_report_file

    if trusted_key or fingerprint:
        anchor = load_anchor(trusted_key or [], fingerprint or [])
        keys = anchored_keys(
            load_document(path), public_keys=anchor.public_keys, fingerprints=anchor.fingerprints
        )
    else:
        with opened() as ctx:
            keys = gateway_public_keys(ctx)
    signed = verify_report_file(path, keys=keys)
    if as_json:
        print_json(
            {
                "valid": True,
                "report_id": signed.report.report_id,
                "report_schema": signed.report.report_schema,
                "key_id": signed.signature.key_id,
                "anchored": bool(trusted_key or fingerprint),
            }
        )
        return
    out.print(
        f"report signature valid: {signed.report.report_id} ({signed.report.report_schema}), "
        f"signed by {signed.signature.key_id}"
    )
