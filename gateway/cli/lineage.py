"""`privacy-gateway lineage ...`: export, checkpoint, prove, verify bundles, signing keys."""

# deferred imports: a command imports what it runs inside its function, so that `--help`
# and every other command start without loading the service, the ORM or the models.
from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from gateway.cli.common import CLI_ACTOR_ID, JsonFlag, in_tx, opened, out
from gateway.cli.verify import verify_offline

app = typer.Typer()  # merged into the root app by gateway.cli.root

lineage_app = typer.Typer(no_args_is_help=True, help="Signed lineage: export, prove, verify.")
app.add_typer(lineage_app, name="lineage")


class ExportFormat(StrEnum):
    BUNDLE = "bundle"
    OPENLINEAGE = "openlineage"
    PROV = "prov"


@lineage_app.command("export")
def export(
    output: Annotated[Path, typer.Option(help="file to write")],
    dataset: Annotated[str | None, typer.Option(help="only this dataset (name or id)")] = None,
    since: Annotated[datetime | None, typer.Option(help="only records from this time on")] = None,
    fmt: Annotated[ExportFormat, typer.Option("--format")] = ExportFormat.BUNDLE,
    target_region: Annotated[
        str | None, typer.Option(help="where the export goes (default: this gateway's region)")
    ] = None,
) -> None:
    """Export a self-contained, verifiable bundle (or OpenLineage events / W3C PROV-JSON)."""
    from gateway.lineage.ledger import Actor, drain
    from gateway.lineage.service import export_lineage

    with opened() as ctx:
        drain(ctx.engine)
        summary = in_tx(
            ctx,
            lambda s: export_lineage(
                ctx,
                s,
                output,
                fmt=fmt.value,
                dataset_ref=dataset,
                since=since,
                target_region=target_region or ctx.settings.region,
                actor=Actor("cli", CLI_ACTOR_ID),
            ),
        )
    out.print(summary)


@lineage_app.command("checkpoint")
def checkpoint(
    watch: Annotated[bool, typer.Option(help="keep running; sign when one is due")] = False,
    every_records: Annotated[int, typer.Option(min=1)] = 10_000,
    every_seconds: Annotated[int, typer.Option(min=1)] = 300,
    output: Annotated[
        Path | None, typer.Option(help="also append it to this file (keep it off this host)")
    ] = None,
) -> None:
    """Sign a checkpoint (Merkle tree head) over every record so far; --watch: at intervals.
    --output appends the signed checkpoint to a file `verify --against` pins the ledger to."""
    from datetime import timedelta

    from gateway.lineage.anchor import append_checkpoint
    from gateway.lineage.checkpointer import Checkpointer
    from gateway.lineage.ledger import drain
    from gateway.lineage.signing import ensure_signing_key

    with opened() as ctx:
        if watch:
            every = timedelta(seconds=every_seconds)
            poll = min(30.0, every_seconds / 2)
            Checkpointer(
                ctx, every_records=every_records, every=every, poll_seconds=poll
            ).run_forever()
            return
        in_tx(ctx, lambda s: ensure_signing_key(ctx, s))  # its creation record is signed too
        drain(ctx.engine)
        row, line = in_tx(ctx, lambda s: _checkpoint_and_line(ctx, s))
        for path in {output, ctx.settings.lineage_checkpoint_log} - {None}:
            append_checkpoint(path, line)
    out.print(f"checkpoint: tree size {row.tree_size}, root {row.root_hash}, key {row.key_id}")


def _checkpoint_and_line(ctx: Any, session: Any) -> tuple[Any, dict[str, Any]]:
    from gateway.lineage.anchor import pinned_line
    from gateway.lineage.checkpoints import create_checkpoint

    row = create_checkpoint(ctx, session)
    return row, pinned_line(session, row)


@lineage_app.command("prove")
def prove(
    asset: Annotated[str, typer.Argument(help="asset id")],
    output: Annotated[Path, typer.Option(help="file to write the proof bundle to")],
    target_region: Annotated[
        str | None, typer.Option(help="where the bundle goes (default: this gateway's region)")
    ] = None,
) -> None:
    """Every record of one asset with inclusion proofs against a fresh signed checkpoint."""
    from gateway.lineage.ledger import Actor, drain
    from gateway.lineage.service import prove_asset

    with opened() as ctx:
        drain(ctx.engine)
        summary = in_tx(
            ctx,
            lambda s: prove_asset(
                ctx,
                s,
                asset,
                output,
                target_region=target_region or ctx.settings.region,
                actor=Actor("cli", CLI_ACTOR_ID),
            ),
        )
    out.print(summary)


@lineage_app.command("verify-bundle")
def verify_bundle_cmd(
    path: Annotated[Path, typer.Argument(exists=True, dir_okay=False)],
    trusted_key: Annotated[list[Path] | None, typer.Option(help="PEM public key you trust")] = None,
    fingerprint: Annotated[list[str] | None, typer.Option(help="SHA-256 key fingerprint")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Verify an exported bundle offline (same as `privacy-gateway verify PATH`)."""
    verify_offline(path, trusted_key or [], fingerprint or [], as_json=as_json)


@lineage_app.command("public-key")
def public_key(
    output: Annotated[Path | None, typer.Option(help="write the PEM here")] = None,
) -> None:
    """Print (and optionally write) the active signing key's PEM and fingerprint: publish it."""
    from gateway.lineage.format.keys import public_pem
    from gateway.lineage.signing import ensure_signing_key

    with opened() as ctx:
        row = in_tx(ctx, lambda s: ensure_signing_key(ctx, s))
    pem = public_pem(row.public_key)
    if output is not None:
        output.write_text(pem)
    out.print(f"key id:      {row.key_id}\nfingerprint: {row.fingerprint}")
    out.print(pem, end="")


@lineage_app.command("rotate-key")
def rotate_key() -> None:
    """Replace the signing key; the old key signs the hand-over, then is destroyed."""
    from gateway.lineage.ledger import Actor
    from gateway.lineage.signing import rotate_signing_key

    with opened() as ctx:
        row = in_tx(ctx, lambda s: rotate_signing_key(ctx, s, actor=Actor("cli", CLI_ACTOR_ID)))
    out.print(
        f"new signing key {row.key_id} (fingerprint {row.fingerprint}), "
        f"handed over from {row.previous_key_id}"
    )
