"""`privacy-gateway keys ...` (rotation, re-encryption, shredding) and `vault read`."""

# deferred imports: a command imports what it runs inside its function, so that `--help`
# and every other command start without loading the service, the ORM or the models.
from __future__ import annotations

from typing import Annotated

import typer

from gateway.cli.common import cli_actor, in_tx, opened, out

app = typer.Typer()  # merged into the root app by gateway.cli.root

keys_app = typer.Typer(no_args_is_help=True, help="Dataset and master keys: rotate, shred.")
vault_app = typer.Typer(no_args_is_help=True, help="The re-identification vault (admins).")
app.add_typer(keys_app, name="keys")
app.add_typer(vault_app, name="vault")


def _dataset_id(ctx: object, ref: str) -> str:
    from gateway.datasets import get_dataset

    return in_tx(ctx, lambda s: get_dataset(s, ref).id)


@keys_app.command("rotate")
def rotate(
    dataset: Annotated[str, typer.Option(help="dataset name or id")],
    reencrypt: Annotated[bool, typer.Option(help="re-seal old data under the new key")] = True,
) -> None:
    """New dataset key version (new writes use it at once); then re-encrypt old data."""
    from gateway.pseudonymisation.custody import reencrypt_dataset, rotate_dataset_key

    with opened() as ctx:
        ds = _dataset_id(ctx, dataset)
        out.print(f"dataset key version {rotate_dataset_key(ctx, ds, actor=cli_actor())} in use")
        if reencrypt:
            out.print(f"re-encrypted {reencrypt_dataset(ctx, ds, actor=cli_actor())} assets")


@keys_app.command("reencrypt")
def reencrypt(dataset: Annotated[str, typer.Option(help="dataset name or id")]) -> None:
    """Resume re-encryption after a rotation (idempotent)."""
    from gateway.pseudonymisation.custody import reencrypt_dataset

    with opened() as ctx:
        count = reencrypt_dataset(ctx, _dataset_id(ctx, dataset), actor=cli_actor())
        out.print(f"re-encrypted {count} assets")


@keys_app.command("rotate-master")
def rotate_master(reason: Annotated[str, typer.Option()] = "scheduled rotation") -> None:
    """New master key file; every wrapped secret re-wrapped; the old key destroyed. With a
    key service: this region's key rotated there, its data keys re-wrapped, old versions
    retired."""
    from gateway.pseudonymisation.master_rotation import rotate_master_key

    with opened() as ctx:
        counts = rotate_master_key(ctx, actor=cli_actor(), reason=reason)
        out.print(f"master key {ctx.keys.data_master.key_id}; re-wrapped {counts}")


@keys_app.command("shred")
def shred(
    dataset: Annotated[str, typer.Option(help="dataset name or id")],
    reason: Annotated[str, typer.Option(help="why (recorded in lineage)")],
    yes: Annotated[bool, typer.Option("--yes", help="confirm: this cannot be undone")] = False,
) -> None:
    """Crypto-shred a dataset: originals, vault entries and keyed digests become unreadable."""
    from gateway.pseudonymisation.custody import shred_dataset

    if not yes:
        raise typer.BadParameter("shredding cannot be undone; pass --yes to confirm")
    with opened() as ctx:
        report = shred_dataset(ctx, _dataset_id(ctx, dataset), actor=cli_actor(), reason=reason)
    out.print(
        f"shredded {report.dataset_id}: {report.key_versions} key versions, {report.secrets} "
        f"secrets, {report.vault_entries} vault entries, {report.originals_deleted} originals; "
        f"new master key {report.master_key_id}"
    )


@vault_app.command("read")
def vault_read(
    dataset: Annotated[str, typer.Option(help="dataset name or id")],
    pseudonym: Annotated[str, typer.Option(help="e.g. subj_0123...")],
    purpose: Annotated[str, typer.Option(help="why you re-identify (recorded in lineage)")],
) -> None:
    """Disclose the original behind a pseudonym (the CLI operator acts as admin)."""
    from gateway.core.models import Role
    from gateway.pseudonymisation.vault import read_vault

    with opened() as ctx:
        ds = _dataset_id(ctx, dataset)
        found = in_tx(
            ctx,
            lambda s: read_vault(
                ctx, s, dataset_id=ds, pseudonym=pseudonym, purpose=purpose,
                role=Role.ADMIN, actor=cli_actor(),
            ),
        )  # fmt: skip
    out.print(f"{found.field}: {found.value}")
