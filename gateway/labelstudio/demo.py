"""`privacy-gateway demo --labelstudio`: the demo dataset synced to a local Label Studio.

Starts Label Studio (its own venv, data under <demo dir>/labelstudio), the gateway's HTTP
service (signed image URLs, webhooks) and the ML backend (pre-labels, embedded: it reads the
redacted images in-process) on fixed loopback ports, registers the destination, syncs the
redacted demo photos, connects the ML backend to the project (Basic Auth, as Settings ->
Model -> Connect would), prints how to reach everything, and serves until Ctrl-C. Image URLs
are frozen into task data, so the ports stay the same from run to run.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from pydantic import SecretStr
from rich.console import Console
from sqlmodel import select

from gateway.core.context import GatewayContext
from gateway.core.db import transaction
from gateway.core.models import Destination
from gateway.core.settings import Settings
from gateway.labelstudio.destinations import DestinationSpec, register_destination
from gateway.labelstudio.server import LocalLabelStudio
from gateway.labelstudio.sync import sync_dataset
from gateway.lineage import Actor
from gateway.main import create_app
from ml_backend.settings import MLBackendSettings

DEMO_ACTOR = Actor("cli", "demo")
DESTINATION = "demo-labelstudio"


def _credentials(folder: Path) -> dict[str, str]:
    """The demo's Label Studio login and ML backend Basic Auth pair, made once and kept
    (mode 0600) for later runs; a file from an older demo gains the pair it lacks."""
    path = folder / "credentials.json"
    stored: dict[str, str] = json.loads(path.read_text()) if path.exists() else {}
    made = {
        "username": "demo@gateway.local",
        "password": secrets.token_urlsafe(12),
        "token": secrets.token_hex(20),
        "ml_user": "label-studio",
        "ml_password": secrets.token_urlsafe(18),
    }
    if stored.keys() >= made.keys():
        return stored
    folder.mkdir(parents=True, exist_ok=True)
    merged = {**made, **stored}
    fresh = folder / "credentials.json.new"
    fresh.unlink(missing_ok=True)
    fd = os.open(fresh, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(merged, fh)
    os.replace(fresh, path)
    return merged


def serve_demo(
    data_dir: Path,
    *,
    dataset: str,
    out: Console,
    labelstudio_port: int = 8080,
    gateway_port: int = 8000,
    ml_port: int = 9090,
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
    gateway = _Background(create_app(ctx.settings, ctx=ctx), gateway_port, "gateway-http")
    ml = None
    try:
        out.print("starting Label Studio ...")
        server.start()
        gateway.start()
        out.print("loading the ML backend's pre-label models ...")
        ml_app = ml_backend_app(ctx, data_dir, login, labelstudio=server)
        ml = _Background(ml_app, ml_port, "ml-backend-http")
        ml.start()
        _register(ctx, server, gateway_url)
        report = sync_dataset(
            ctx, dataset_ref=dataset, destination_ref=DESTINATION, actor=DEMO_ACTOR
        )
        out.print(f"synced to Label Studio: {report.describe()}")
        ml_url = f"http://127.0.0.1:{ml_port}"
        connect_ml_backend(server, report.project_id, ml_url, login)
        _print_access(out, server, report.project_id, gateway_url, ml_url, data_dir, login)
        hold()
    finally:
        for running in (ml, gateway):
            if running is not None:
                running.stop()
        server.stop()
        ctx.close()


def _print_access(
    out: Console,
    server: LocalLabelStudio,
    project_id: int,
    gateway_url: str,
    ml_url: str,
    data_dir: Path,
    login: dict[str, str],
) -> None:
    out.print(f"Label Studio:  {server.url}/projects/{project_id}/data")
    out.print(f"  login:       {server.username} / {server.password}")
    out.print(f"  API token:   {server.token}")
    out.print(f"gateway API:   {gateway_url}/docs (images and webhooks served from here)")
    out.print(
        f"ML backend:    {ml_url} (connected; Basic Auth {login['ml_user']} / "
        f"{login['ml_password']})"
    )
    out.print("  pre-labels:  select tasks in Label Studio -> Actions -> Retrieve Predictions")
    out.print(f"later CLI commands: export GATEWAY_DATA_DIR={data_dir.resolve()}")
    out.print(f"  (credentials kept in {data_dir.resolve() / 'labelstudio' / 'credentials.json'})")
    out.print("Press Ctrl-C to stop all three servers.")


class _Background:
    """One uvicorn server on a loopback port, in a daemon thread."""

    def __init__(self, app: Any, port: int, name: str) -> None:
        config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning")
        self.http = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.http.run, name=name, daemon=True)

    def start(self) -> None:
        self.thread.start()
        _wait_started(self.http)

    def stop(self) -> None:
        self.http.should_exit = True
        if self.thread.is_alive():
            self.thread.join(30)


def ml_backend_app(
    ctx: GatewayContext, data_dir: Path, login: dict[str, str], *, labelstudio: LocalLabelStudio
) -> Any:
    """The ML backend, embedded: same process and database as the demo's gateway; `fit` reads
    annotations back from the demo's Label Studio (on loopback, hence the opt-in)."""
    # deferred: the ML backend and its model runtimes (onnxruntime) only when the demo starts it
    from ml_backend.app import create_app as create_ml_app
    from ml_backend.sources.loading import load_sources

    settings = MLBackendSettings(
        basic_auth_user=login["ml_user"],
        basic_auth_password=SecretStr(login["ml_password"]),
        state_dir=data_dir / "ml_backend",
        label_studio_url=labelstudio.url,
        label_studio_token=SecretStr(labelstudio.token),
        label_studio_allow_local_addresses=True,
    )
    return create_ml_app(settings, ctx=ctx, sources=load_sources(settings))


def connect_ml_backend(
    server: LocalLabelStudio, project_id: int, ml_url: str, login: dict[str, str]
) -> None:
    """Connect the ML backend to the project once (Label Studio checks /health and /setup with
    the Basic Auth pair), and give Label Studio's webhook to its /webhook the same header."""
    headers = {"Authorization": f"Token {server.token}"}
    with httpx.Client(base_url=server.url, headers=headers, timeout=120) as http:
        connected = http.get("/api/ml", params={"project": project_id}).json()
        if not any(b.get("url") == ml_url for b in connected):
            http.post(
                "/api/ml",
                json={
                    "project": project_id,
                    "url": ml_url,
                    "title": "privacy-gateway pre-labels",
                    "auth_method": "BASIC_AUTH",
                    "basic_auth_user": login["ml_user"],
                    "basic_auth_pass": login["ml_password"],
                    "is_interactive": False,
                },
            ).raise_for_status()
        pair = f"{login['ml_user']}:{login['ml_password']}".encode()
        auth = {"Authorization": f"Basic {base64.b64encode(pair).decode()}"}
        for hook in http.get("/api/webhooks", params={"project": project_id}).json():
            if hook["url"] == f"{ml_url}/webhook" and hook.get("headers") != auth:
                http.patch(f"/api/webhooks/{hook['id']}", json={"headers": auth}).raise_for_status()


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
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    while not stop.wait(0.5):
        pass
