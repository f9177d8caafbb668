"""`privacy-gateway demo --labelstudio`: the demo dataset synced to a local Label Studio.

Starts Label Studio (its own venv, data under <demo dir>/labelstudio) and the gateway's HTTP
service (signed image URLs, webhooks) on fixed loopback ports, registers the destination,
syncs the redacted demo photos, prints the URL and the login, and serves until Ctrl-C.
Image URLs are frozen into task data, so the ports stay the same from run to run.
"""

from __future__ import annotations

import json
import os
import secrets
import threading
import time
from collections.abc import Callable
from pathlib import Path

import uvicorn
from rich.console import Console
from sqlmodel import select

from gateway.context import GatewayContext
from gateway.db import transaction
from gateway.labelstudio.destinations import DestinationSpec, register_destination
from gateway.labelstudio.server import LocalLabelStudio
from gateway.labelstudio.sync import sync_dataset
from gateway.lineage import Actor
from gateway.main import create_app
from gateway.models import Destination
from gateway.settings import Settings

DEMO_ACTOR = Actor("cli", "demo")
DESTINATION = "demo-labelstudio"


def _credentials(folder: Path) -> dict[str, str]:
    """The demo's Label Studio login, made once and kept (mode 0600) for later runs."""
    path = folder / "credentials.json"
    if path.exists():
        stored: dict[str, str] = json.loads(path.read_text())
        return stored
    folder.mkdir(parents=True, exist_ok=True)
    made = {
        "username": "demo@gateway.local",
        "password": secrets.token_urlsafe(12),
        "token": secrets.token_hex(20),
    }
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(made, fh)
    return made


def serve_demo(
    data_dir: Path,
    *,
    dataset: str,
    out: Console,
    labelstudio_port: int = 8080,
    gateway_port: int = 8000,
    hold: Callable[[], None],
) -> None:
    folder = data_dir / "labelstudio"
    login = _credentials(folder)
    server = LocalLabelStudio(
        data_dir=folder,
        port=labelstudio_port,
        username=login["username"],
        password=login["password"],
        token=login["token"],
    )
    ctx = GatewayContext.open(Settings(data_dir=data_dir), create_master_key=True)
    gateway_url = f"http://127.0.0.1:{gateway_port}"
    http = uvicorn.Server(
        uvicorn.Config(
            create_app(ctx.settings, ctx=ctx),
            host="127.0.0.1",
            port=gateway_port,
            log_level="warning",
        )
    )
    thread = threading.Thread(target=http.run, name="gateway-http", daemon=True)
    try:
        out.print("starting Label Studio ...")
        server.start()
        thread.start()
        _wait_started(http)
        _register(ctx, server, gateway_url)
        report = sync_dataset(
            ctx, dataset_ref=dataset, destination_ref=DESTINATION, actor=DEMO_ACTOR
        )
        out.print(f"synced to Label Studio: {report.describe()}")
        out.print(f"Label Studio: {server.url}/projects/{report.project_id}/data")
        out.print(f"login:        {server.username} / {server.password}")
        out.print(f"gateway API:  {gateway_url}/docs (images and webhooks served from here)")
        out.print("Press Ctrl-C to stop both servers.")
        hold()
    finally:
        http.should_exit = True
        if thread.is_alive():
            thread.join(30)
        server.stop()
        ctx.close()


def _wait_started(http: uvicorn.Server) -> None:
    deadline = time.monotonic() + 60
    while not http.started:
        if time.monotonic() > deadline:
            raise RuntimeError("the gateway's HTTP service did not start (is the port free?)")
        time.sleep(0.1)  # polling a starting server


def _register(ctx: GatewayContext, server: LocalLabelStudio, gateway_url: str) -> None:
    with transaction(ctx.engine) as session:
        if session.exec(select(Destination).where(Destination.name == DESTINATION)).first():
            return
        spec = DestinationSpec.model_validate(
            {
                "name": DESTINATION,
                "url": server.url,
                "token": server.token,
                "region": ctx.settings.region,
                "gateway_url": gateway_url,
                "allow_local_addresses": True,  # the demo's Label Studio runs on loopback
            }
        )
        register_destination(ctx, session, spec, actor=DEMO_ACTOR)


def wait_for_interrupt() -> None:
    """Block until Ctrl-C (SIGINT) or SIGTERM."""
    import signal

    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    while not stop.wait(0.5):
        pass
