"""`privacy-gateway`: the command line. `gateway.cli.entry.main` is the console entry point;
`gateway.cli.root` assembles the command tree (`app`), loaded on first use so that `verify`
can run without it."""

from typing import TYPE_CHECKING, Any

from gateway.cli.entry import main

if TYPE_CHECKING:
    from gateway.cli.root import app

__all__ = ["app", "main"]


def __getattr__(name: str) -> Any:
    if name == "app":
        # deferred: the whole command tree (see the docstring)
        from gateway.cli.root import app

        return app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
