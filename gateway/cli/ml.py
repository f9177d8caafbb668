"""`privacy-gateway ml-backend serve`: the Label Studio ML backend on redacted images."""

# deferred imports: a command imports what it runs inside its function, so that `--help`
# and every other command start without loading the service, the ORM or the models.
from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

ml_app = typer.Typer(no_args_is_help=True, help="Label Studio ML backend (pre-labels).")
err = Console(stderr=True)

if TYPE_CHECKING:
    from ml_backend.settings import MLBackendSettings
    from ml_backend.sources.base import SourceSet


@ml_app.command("serve")
def serve(
    host: Annotated[str, typer.Option(help="interface to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port to listen on")] = 9090,
) -> None:
    """Load the pre-label models, then serve /health, /setup, /predict, /webhook, /versions.

    Credentials: GATEWAY_ML_BASIC_AUTH_USER and GATEWAY_ML_BASIC_AUTH_PASSWORD(_FILE); give
    the same pair to Label Studio (Model -> Authentication: Basic Auth). Images: from
    GATEWAY_ML_GATEWAY_URL with the ml-role GATEWAY_ML_GATEWAY_API_KEY(_FILE) and
    GATEWAY_ML_REGION when set, else in-process from this host's gateway."""
    import os

    import uvicorn

    from gateway.core.context import GatewayContext
    from gateway.core.settings import Settings
    from gateway.logs import UVICORN_LOG_CONFIG, configure_logging
    from ml_backend.app import MissingCredentials, create_app, image_source
    from ml_backend.settings import MLBackendSettings

    # JSON lines like the gateway's; request lines without query strings, no access log
    configure_logging(os.environ.get("GATEWAY_LOG_LEVEL", "INFO"))
    settings = MLBackendSettings()
    if settings.credentials() is None:
        raise MissingCredentials(
            "set GATEWAY_ML_BASIC_AUTH_USER and GATEWAY_ML_BASIC_AUTH_PASSWORD (or _FILE) "
            "before serving: Label Studio must authenticate to the ML backend"
        )
    if settings.gateway_url is not None:
        # separate deployment: images over HTTP with the backend's own ml-role key; no
        # database, store or master key of the gateway on this host
        if settings.state_dir is None:
            settings = settings.model_copy(update={"state_dir": Settings().data_dir / "ml_backend"})
        image_source(settings, ctx=None).close()  # a missing key or region: fail before loading
        err.print(f"images: {settings.gateway_url} (ml-role key, region {settings.region})")
        app = create_app(settings, sources=_load(settings))
        uvicorn.run(app, host=host, port=port, log_config=UVICORN_LOG_CONFIG, access_log=False)
        return
    ctx = GatewayContext.open(Settings())  # embedded: in-process, same host as the gateway
    try:
        err.print("images: in-process from this gateway's database and store")
        app = create_app(settings, ctx=ctx, sources=_load(settings))
        uvicorn.run(app, host=host, port=port, log_config=UVICORN_LOG_CONFIG, access_log=False)
    finally:
        ctx.close()


def _load(settings: MLBackendSettings) -> SourceSet:
    from ml_backend.sources.loading import load_sources

    err.print("loading pre-label models ...")
    sources = load_sources(settings)
    for name, model in sources.describe().items():
        err.print(f"  {name:<7} {model}")
    return sources
