"""The console entry point: one translation of errors into messages and exit codes for every
command. `verify` runs from its own module, so that checking a bundle offline loads neither the
other commands nor, through them, the database, policy or report code."""

from __future__ import annotations

import os
import sys

import typer
from rich.markup import escape

from gateway.cli.common import PROG, err
from gateway.core.errors import GatewayError, NotAuthenticated, NotFound
from gateway.logs import configure_logging
from redaction.errors import InputError, RedactionError

EXIT_CODES: dict[type[Exception], int] = {
    NotAuthenticated: 4,
    NotFound: 3,
    InputError: 2,
    GatewayError: 1,
    RedactionError: 1,
}


def main(argv: list[str] | None = None) -> None:
    """Console entry point. Usage errors: one line on stderr, exit 2; typed domain errors: one
    line with their code and the exit code of EXIT_CODES; a command's own exit code passes on.
    Only a bug (any other exception) prints a traceback."""
    configure_logging(os.environ.get("GATEWAY_LOG_LEVEL", "WARNING"))  # JSON lines, stderr
    args = sys.argv[1:] if argv is None else list(argv)
    app, args, prog = _command(args)
    try:
        rc = app(args=args, prog_name=prog, standalone_mode=False)
    except (GatewayError, RedactionError) as exc:
        sys.exit(_domain_error(exc))
    except (typer.Abort, KeyboardInterrupt):
        err.print("aborted", markup=False, highlight=False)
        sys.exit(130)
    except typer.TyperException as exc:  # Typer's bundled click: usage and file errors
        sys.exit(_usage_error(exc))
    sys.exit(rc if isinstance(rc, int) else 0)


def _command(args: list[str]) -> tuple[typer.Typer, list[str], str]:
    """`verify ...` alone (the same command the whole tree holds), else the whole tree."""
    if args[:1] == ["verify"]:
        # deferred: only this command's module, not the whole command tree
        from gateway.cli.verify import verify_app

        return verify_app, args[1:], f"{PROG} verify"
    # deferred: the whole command tree (every sub-app module)
    from gateway.cli.root import app

    return app, args, PROG


def _domain_error(exc: GatewayError | RedactionError) -> int:
    # escaped: "[code]" and user text must not be read as rich markup (it vanished)
    err.print(
        f"[red]error[/red] {escape(f'[{exc.code}]')}: {escape(exc.message)}",
        soft_wrap=True,  # one line however long: scripts grep it
        highlight=False,
    )
    return next(c for t, c in EXIT_CODES.items() if isinstance(exc, t))


def _usage_error(exc: typer.TyperException) -> int:
    code = getattr(exc, "exit_code", 2)
    ctx = getattr(exc, "ctx", None)
    if type(exc).__name__ == "NoArgsIsHelpError":  # a group run bare: its help, as click does
        err.print(exc.format_message(), markup=False, highlight=False)
        return int(code)
    where = f" (see '{ctx.command_path} --help')" if ctx is not None else ""
    message = " ".join(exc.format_message().split())  # one line, whatever click wrapped
    err.print(f"usage error: {message}{where}", markup=False, highlight=False, soft_wrap=True)
    return int(code)
