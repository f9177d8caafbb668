"""Run the service under uvicorn with our JSON logs (uvicorn's default config drops INFO)."""

from __future__ import annotations

from typing import Literal

import uvicorn

from gateway.core.settings import Settings
from gateway.logs import UVICORN_LOG_CONFIG, configure_logging
from gateway.main import create_app


def run_service(
    *, host: str, port: int, role: Literal["all", "api", "worker"] | None = None
) -> None:
    settings = Settings() if role is None else Settings(role=role)
    configure_logging(settings.log_level)
    uvicorn.run(
        create_app(settings),
        host=host,
        port=port,
        log_config=UVICORN_LOG_CONFIG,
        access_log=False,  # gateway.logs writes one line a request, without query strings
    )
