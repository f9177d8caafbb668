"""`privacy-gateway verify`: lineage offline from an exported bundle, or the live chain; or a
signed governance report.

The console entry point runs this command from here without loading the rest of the command
line: offline verification of a bundle imports the CLI framework and the database-free lineage
format package only (a test checks `sys.modules`). The live and report modes load their own
code when they are chosen.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Annotated

import typer

from gateway.cli.common import JsonFlag, err, in_tx, opened, out, print_json

# plain (click) help, as the root app's
verify_app = typer.Typer(add_completion=False, rich_markup_mode=None)


@verify_app.command()
def verify(
    bundle: Annotated[
        Path | None, typer.Argument(help="an exported bundle (offline); none: the live chain")
    ] = None,
    trusted_key: Annotated[list[Path] | None, typer.Option(help="PEM public key you trust")] = None,
    fingerprint: Annotated[list[str] | None, typer.Option(help="SHA-256 key fingerprint")] = None,
    report: Annotated[
        Path | None, typer.Option(help="a signed JSON governance report to check instead")
    ] = None,
    against: Annotated[
        list[Path] | None, typer.Option(help="pinned checkpoint file (kept outside the data dir)")
    ] = None,
    strict: Annotated[bool, typer.Option(help="fail on records no checkpoint signs")] = False,
    from_anchor: Annotated[
        bool, typer.Option(help="walk from the newest trusted checkpoint")
    ] = False,
    allow_empty: Annotated[bool, typer.Option(help="an empty, unsigned ledger passes")] = False,
    as_json: JsonFlag = False,
) -> None:
    """Verify lineage: a bundle offline (names the first bad record), or the live chain against
    a trusted key and pinned checkpoints; or, with --report, a governance report's signature."""
    if report is not None:
        # deferred: report verification loads the report code (and, without a key, the database)
        from gateway.cli.reports import report_verify

        report_verify(report, trusted_key, fingerprint, as_json=as_json)
        return
    if bundle is not None:
        verify_offline(bundle, trusted_key or [], fingerprint or [], as_json=as_json)
        return
    verify_live(
        trusted_keys=trusted_key or [],
        fingerprints=fingerprint or [],
        against=against or [],
        strict=strict,
        from_anchor=from_anchor,
        allow_empty=allow_empty,
        as_json=as_json,
    )


def verify_offline(
    path: Path, trusted_keys: list[Path], fingerprints: list[str], *, as_json: bool = False
) -> None:
    # deferred: every other command registers `verify` without loading cryptography
    from gateway.lineage.format.verify import load_anchor, verify_bundle

    report = verify_bundle(path, anchor=load_anchor(trusted_keys, fingerprints))
    if as_json:
        print_json({"intact": True, **asdict(report)})
        return
    text = report.describe()
    out.print(text.splitlines()[0])
    for line in text.splitlines()[1:]:
        (err if line.startswith("WARNING") else out).print(line)


def verify_live(
    *,
    trusted_keys: list[Path],
    fingerprints: list[str],
    against: list[Path],
    strict: bool,
    from_anchor: bool,
    allow_empty: bool,
    as_json: bool = False,
) -> None:
    """The live ledger against the key and checkpoints the verifier trusts (flags first, then
    GATEWAY_LINEAGE_TRUSTED_FINGERPRINT and GATEWAY_LINEAGE_CHECKPOINT_LOG, then the gateway's
    own key proven with the master key)."""
    # deferred: the live ledger needs the database (SQLModel), which offline checks do not
    from gateway.lineage.ledger import drain
    from gateway.lineage.live import verify_live_ledger, verify_options, with_own_key

    with opened() as ctx:
        options = verify_options(
            ctx.settings,
            trusted_keys=trusted_keys,
            fingerprints=fingerprints,
            against=against,
            strict=strict,
            from_anchor=from_anchor,
            allow_empty=allow_empty,
        )
        drain(ctx.engine)
        result = in_tx(ctx, lambda s: verify_live_ledger(s, with_own_key(options, ctx.keys, s)))
    if as_json:
        print_json(
            {
                "intact": True,
                "records": result.head_seq,
                "walked_from": result.walked_from,
                "checkpoints": result.stored_checkpoints,
                "pinned_checkpoints": result.pinned_checkpoints,
                "anchored_size": result.anchored_size,
                "unanchored": result.unanchored,
                "trusted_key": result.trusted_key,
                "cross_check": None
                if result.cross is None
                else {"assets": result.cross.assets, "detections": result.cross.detections},
            }
        )
        return
    for line in result.describe():
        out.print(line)
