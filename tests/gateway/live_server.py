"""The real gateway app served by uvicorn on a loopback port, for tests that need real
sockets (a body that is never sent, a request that must be answered mid-upload)."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import uvicorn

from gateway.core.context import GatewayContext
from gateway.labelstudio.server import free_port
from gateway.main import create_app
from gateway.pipeline import NotBuiltRedactor


@contextmanager
def serve(ctx: GatewayContext) -> Iterator[tuple[str, int]]:
    """(host, port) of a running gateway; redaction quarantines (not what these tests test)."""
    with serve_on_loop(ctx) as (address, _):
        yield address


@contextmanager
def serve_on_loop(
    ctx: GatewayContext,
) -> Iterator[tuple[tuple[str, int], asyncio.AbstractEventLoop]]:
    """`serve`, with the server's event loop (to reach its worker threads' limiter)."""
    app = create_app(ctx.settings, ctx=ctx, redactor_factory=NotBuiltRedactor)
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="gateway-http", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)  # polling startup, not timing anything
    if not server.started:
        raise RuntimeError("the gateway server did not start")
    try:
        yield ("127.0.0.1", port), server.servers[0].get_loop()
    finally:
        server.should_exit = True
        thread.join(30)
