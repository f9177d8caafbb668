"""What every command module shares: the consoles, the context opener, the progress bar."""

# deferred imports: a command imports what it runs inside its function, so that `--help`
# and every other command start without loading the service, the ORM or the models.
from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

PROG = "privacy-gateway"
out = Console()
err = Console(stderr=True)
T = TypeVar("T")


@contextmanager
def opened(create_master_key: bool = False, migrate_schema: bool = False) -> Iterator[Any]:
    """The gateway context for one command. Commands do not migrate the database (only `init`
    does): a schema that is not current is a one-line `schema-outdated` error."""
    from gateway.core.context import GatewayContext
    from gateway.core.settings import Settings

    ctx = GatewayContext.open(
        Settings(), create_master_key=create_master_key, migrate_schema=migrate_schema
    )
    try:
        yield ctx
    finally:
        ctx.close()


def in_tx(ctx: Any, fn: Callable[[Any], T]) -> T:
    from gateway.core.db import transaction

    with transaction(ctx.engine) as session:
        return fn(session)


def progress_bar() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=err,
        transient=False,
    )


CLI_ACTOR_ID = "cli"


def cli_actor() -> Any:
    """The lineage actor of every command (imported late: the ledger pulls in SQLModel)."""
    from gateway.lineage.ledger import Actor

    return Actor("cli", CLI_ACTOR_ID)


def package_version() -> str:
    """The installed distribution's version ("source" when run from a checkout only)."""
    from importlib import metadata

    try:
        return metadata.version("label-studio-privacy-gateway")
    except metadata.PackageNotFoundError:
        return "source"


JsonFlag = Annotated[bool, typer.Option("--json", help="print one JSON document (for scripts)")]


def print_json(data: Any) -> None:
    """One JSON document on stdout, nothing else (dates as ISO 8601 text)."""
    sys.stdout.write(json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")
