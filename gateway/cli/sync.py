"""`privacy-gateway sync`, `destinations ...`, `annotations pull`: the Label Studio side."""

# deferred imports: a command imports what it runs inside its function, so that `--help`
# and every other command start without loading the service, the ORM or the models.
from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from gateway.cli.common import (
    JsonFlag,
    cli_actor,
    err,
    in_tx,
    opened,
    out,
    print_json,
    progress_bar,
)

app = typer.Typer()  # merged into the root app by gateway.cli.root

destinations_app = typer.Typer(no_args_is_help=True, help="Label Studio destinations (admin).")
annotations_app = typer.Typer(no_args_is_help=True, help="Annotations from Label Studio.")
app.add_typer(destinations_app, name="destinations")
app.add_typer(annotations_app, name="annotations")
TOKEN_ENV = "LABEL_STUDIO_TOKEN"  # noqa: S105  (a variable name)


@app.command()
def sync(
    dataset: Annotated[str, typer.Argument(help="dataset name or id")],
    to: Annotated[str, typer.Option("--to", help="destination name or id")],
    batch_size: Annotated[int, typer.Option(min=1, max=1000)] = 50,
) -> None:
    """Sync the dataset's released, redacted assets to Label Studio (idempotent, resumable)."""
    from gateway.labelstudio.sync import sync_dataset

    with opened() as ctx, progress_bar() as bar:
        task = bar.add_task("syncing", total=None)
        report = sync_dataset(
            ctx,
            dataset_ref=dataset,
            destination_ref=to,
            actor=cli_actor(),
            batch_size=batch_size,
            progress=lambda done, total: bar.update(task, completed=done, total=total),
        )
    out.print(report.describe())
    _print_skipped(report.skipped)
    for asset_id, code in sorted(report.failed.items()):
        err.print(f"failed: {asset_id} ({code})")
    if report.failed:
        sys.exit(5)


SKIPPED_SHOWN = 50


def _print_skipped(skipped: dict[str, str]) -> None:
    """Every reason with its count, then each skipped asset (the first 50; the API lists all)."""
    from gateway.labelstudio.sync_plan import skipped_by_reason

    for why, count in skipped_by_reason(skipped).items():
        out.print(f"skipped {count}: {why}", highlight=False, markup=False)
    for asset_id, why in list(skipped.items())[:SKIPPED_SHOWN]:
        out.print(f"  skipped: {asset_id} ({why})", highlight=False, markup=False)
    if len(skipped) > SKIPPED_SHOWN:
        out.print(f"  ... and {len(skipped) - SKIPPED_SHOWN} more", highlight=False)


@destinations_app.command("add")
def destinations_add(
    name: Annotated[str, typer.Argument()],
    url: Annotated[str, typer.Option(help="Label Studio base URL")],
    region: Annotated[str, typer.Option(help="region the Label Studio server runs in")],
    gateway_url: Annotated[str, typer.Option(help="this gateway's URL as browsers see it")],
    transfer_basis: Annotated[str | None, typer.Option()] = None,
    image_delivery: Annotated[
        str, typer.Option(help="signed-url (default) | local-files (Label Studio's own storage)")
    ] = "signed-url",
    local_files_root: Annotated[
        str | None, typer.Option(help="for local-files: Label Studio's LOCAL_FILES_DOCUMENT_ROOT")
    ] = None,
    allow_local_addresses: Annotated[
        bool,
        typer.Option(
            help="an admin's opt-in: the URL may reach loopback, link-local or unspecified "
            "addresses (Label Studio on this machine); metadata addresses stay refused"
        ),
    ] = False,
) -> None:
    """Register a destination. The token is read from $LABEL_STUDIO_TOKEN or, if unset, prompted for
    (never from the command line, where other users could see it)."""
    from gateway.labelstudio.destinations import DestinationSpec, register_destination

    token = os.environ.get(TOKEN_ENV) or typer.prompt("Label Studio access token", hide_input=True)
    spec = DestinationSpec.model_validate(
        {
            "name": name,
            "url": url,
            "region": region,
            "gateway_url": gateway_url,
            "transfer_basis": transfer_basis,
            "image_delivery": image_delivery,
            "local_files_root": local_files_root,
            "allow_local_addresses": allow_local_addresses,
            "token": token,
        }
    )
    with opened() as ctx:
        dest = in_tx(ctx, lambda s: register_destination(ctx, s, spec, actor=cli_actor()))
    out.print(f"registered destination {dest.name} ({dest.id}) in {dest.region}")


@destinations_app.command("list")
def destinations_list(as_json: JsonFlag = False) -> None:
    """Label Studio destinations (never their tokens)."""
    from gateway.labelstudio.destinations import destination_view, list_destinations

    with opened() as ctx:
        views: list[dict[str, Any]] = in_tx(
            ctx, lambda s: [destination_view(d) for d in list_destinations(s)]
        )
    if as_json:
        print_json(views)
        return
    for v in views:
        out.print(f"{v['id']}  {v['name']:<20} {v['region']:<10} {v['url']}")


@destinations_app.command("remove")
def destinations_remove(name: Annotated[str, typer.Argument()]) -> None:
    from gateway.labelstudio.destinations import remove_destination

    with opened() as ctx:
        in_tx(ctx, lambda s: remove_destination(ctx, s, name, actor=cli_actor()))
    out.print(f"removed destination {name}")


@annotations_app.command("pull")
def annotations_pull(
    source: Annotated[str, typer.Option("--from", help="destination name or id")],
) -> None:
    """Reconcile: fetch every annotation Label Studio holds for the gateway's tasks, then
    withdraw the tasks a residency policy no longer allows there."""
    from gateway.labelstudio.annotations import pull_annotations
    from gateway.labelstudio.destinations import get_destination
    from gateway.labelstudio.residency_withdrawal import withdraw_forbidden

    with opened() as ctx:
        destination = in_tx(ctx, lambda s: get_destination(s, source))
        report = pull_annotations(ctx, destination, actor=cli_actor())
        withdrawal = withdraw_forbidden(
            ctx, destination, actor=cli_actor(), annotations_pulled=True
        )
    out.print(
        f"{report.tasks} tasks read: {report.stored} annotations stored, "
        f"{report.deleted} deleted, {len(report.flagged)} assets flagged, "
        f"{len(report.failed)} failed"
    )
    for group in withdrawal.withdrawn:  # residency no longer allows the destination
        out.print(f"withdrawn {group.describe()}", highlight=False, markup=False)
    if withdrawal.pending:
        err.print(f"{withdrawal.pending} task removal(s) pending; run again")
    for ls_id, code in sorted(report.failed.items()):
        err.print(f"failed: annotation {ls_id} ({code}); recorded, the next pull retries it")
    if report.failed:
        sys.exit(5)


@annotations_app.command("export")
def annotations_export(
    dataset: Annotated[str, typer.Argument(help="dataset name or id")],
    fmt: Annotated[str, typer.Option("--format", help="coco | voc | yolo")],
    out_dir: Annotated[Path, typer.Option("--out", help="directory to write into")],
    region: Annotated[str | None, typer.Option(help="region the export goes to")] = None,
) -> None:
    """Export stored annotations (residency-checked; images named by gateway asset id)."""
    from gateway.labelstudio.export import ExportFormat, export_annotations, write_export

    try:
        chosen = ExportFormat(fmt)
    except ValueError:
        raise typer.BadParameter("use coco, voc or yolo", param_hint="--format") from None
    with opened() as ctx:
        result = in_tx(
            ctx,
            lambda s: export_annotations(
                ctx, s, dataset_ref=dataset, fmt=chosen, actor=cli_actor(), target_region=region
            ),
        )
    write_export(out_dir, result, clearance=result.clearance)
    out.print(
        f"{result.images} images, {len(result.files)} files written to {out_dir}"
        f" ({result.skipped_regions} regions not representable in {chosen.value})"
    )
