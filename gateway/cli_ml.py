"""`privacy-gateway ml-backend serve`: the Label Studio ML backend on redacted images."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console

ml_app = typer.Typer(no_args_is_help=True, help="Label Studio ML backend (pre-labels).")
err = Console(stderr=True)


@ml_app.command("serve")
def serve(
    host: Annotated[str, typer.Option(help="interface to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port to listen on")] = 9090,
) -> None:
    """Load the pre-label models, then serve /health, /setup, /predict, /webhook, /versions.

    Credentials: GATEWAY_ML_BASIC_AUTH_USER and GATEWAY_ML_BASIC_AUTH_PASSWORD(_FILE); give
    the same pair to Label Studio (Model -> Authentication: Basic Auth)."""
    import uvicorn

    from gateway.context import GatewayContext
    from gateway.settings import Settings
    from ml_backend.app import MissingCredentials, create_app
    from ml_backend.settings import MLBackendSettings
    from ml_backend.sources.base import load_sources

    settings = MLBackendSettings()
    if settings.credentials() is None:
        raise MissingCredentials(
            "set GATEWAY_ML_BASIC_AUTH_USER and GATEWAY_ML_BASIC_AUTH_PASSWORD (or _FILE) "
            "before serving: Label Studio must authenticate to the ML backend"
        )
    ctx = GatewayContext.open(Settings())
    try:
        err.print("loading pre-label models ...")
        sources = load_sources(settings)
        for name, model in sources.describe().items():
            err.print(f"  {name:<7} {model}")
        uvicorn.run(create_app(settings, ctx=ctx, sources=sources), host=host, port=port)
    finally:
        ctx.close()
