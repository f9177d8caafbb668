"""What every command module shares: the consoles, the context opener, the progress bar."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

out = Console()
err = Console(stderr=True)
T = TypeVar("T")


@contextmanager
def opened(create_master_key: bool = False) -> Iterator[Any]:
    from gateway.context import GatewayContext
    from gateway.settings import Settings

    ctx = GatewayContext.open(Settings(), create_master_key=create_master_key)
    try:
        yield ctx
    finally:
        ctx.close()


def in_tx(ctx: Any, fn: Callable[[Any], T]) -> T:
    from gateway.db import transaction

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
