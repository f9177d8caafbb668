"""`privacy-gateway redact`: the redaction library on a folder, without the service."""

# deferred imports: a command imports what it runs inside its function, so that `--help`
# and every other command start without loading the service, the ORM or the models.
from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from gateway.cli.common import out, progress_bar

app = typer.Typer()  # merged into the root app by gateway.cli.root


@app.command()
def redact(
    input_dir: Annotated[Path, typer.Argument(exists=True, file_okay=False)],
    output_dir: Annotated[Path, typer.Argument()],
    policy: Annotated[Path | None, typer.Option(help="redaction policy (YAML or JSON)")] = None,
    regions_out: Annotated[Path | None, typer.Option(help="write regions as JSON Lines")] = None,
    workers: Annotated[int, typer.Option(min=1)] = max(1, os.cpu_count() or 1),
) -> None:
    """Redact every image under INPUT_DIR into OUTPUT_DIR, mirroring relative paths."""
    from redaction.batch import redact_directory
    from redaction.policy import RedactionPolicy
    from redaction.policy_file import load_policy_file

    chosen = load_policy_file(policy) if policy else RedactionPolicy()
    with progress_bar() as bar:
        task = bar.add_task("redacting", total=None)
        summary = redact_directory(
            input_dir,
            output_dir,
            policy=chosen,
            workers=workers,
            regions_out=regions_out,
            progress=lambda done, total: bar.update(task, completed=done, total=total),
        )
    out.print(
        f"{summary.total} files in {summary.elapsed_seconds:.1f} s: {summary.released} released, "
        f"{summary.quarantined} quarantined, {summary.rejected} rejected"
    )
    for code, count in sorted(summary.reasons.items()):
        out.print(f"  {count} x {code}")
    if regions_out:
        out.print(f"regions: {regions_out}")
    if summary.quarantined or summary.rejected:
        sys.exit(1)
