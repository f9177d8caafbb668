"""Helpers for the fault tests: waiting on conditions with deadlines (never a sleep that
times a fault), a TCP proxy the test can cut (a database outage without touching the shared
PostgreSQL server), and a service with the real isolated redactor behind a real API."""

from __future__ import annotations

import base64
import contextlib
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from sqlmodel import col, select

from gateway.core.db import transaction
from gateway.core.models import Asset, Job, Role
from gateway.core.settings import Settings
from gateway.datasets import DatasetSpec, create_dataset
from gateway.lineage import Actor
from gateway.main import create_app
from gateway.redactor import IsolatedRedactor
from tests.conftest import DATASET_SPEC
from tests.gateway import fault_detectors
from tests.gateway.test_api import make_key
from tests.gateway.test_jobs import actions


def wait_for(
    condition: Callable[[], Any], *, deadline: float = 60.0, what: str = "condition"
) -> Any:
    end = time.monotonic() + deadline
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > end:
            raise AssertionError(f"timed out after {deadline:g} s waiting for {what}")
        time.sleep(0.05)


class TcpProxy:
    """127.0.0.1:<port> -> target. `stop()` closes the listener and every open connection
    (the database is gone: connections break, new ones are refused); `start()` listens on
    the same port again."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        probe = socket.socket()
        probe.bind(("127.0.0.1", 0))
        self.port = probe.getsockname()[1]
        probe.close()
        self._listener: socket.socket | None = None
        self._open: set[socket.socket] = set()
        self._lock = threading.Lock()

    def start(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def stop(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            with contextlib.suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)
            listener.close()
        with self._lock:
            for sock in self._open:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()
            self._open.clear()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            with self._lock:
                self._open.update((client, upstream))
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    def _pipe(self, source: socket.socket, sink: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                sink.sendall(data)
        for sock in (source, sink):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)


@dataclass
class Service:
    client: TestClient
    token: str
    dataset: str
    trap: Path

    @property
    def ctx(self) -> Any:
        return self.client.app.state.ctx  # type: ignore[attr-defined]

    def upload(self, data: bytes, name: str = "x.jpg") -> Any:
        return self.client.post(
            f"/v1/datasets/{self.dataset}/assets",
            headers={"Authorization": f"Bearer {self.token}"},
            files=[("files", (name, data, "image/jpeg"))],
        )

    def accepted(self, data: bytes, name: str = "x.jpg") -> str:
        r = self.upload(data, name)
        assert r.status_code == 201, r.text
        return str(r.json()["results"][0]["asset_id"])

    def ready(self) -> bool:
        return self.client.get("/health/ready").status_code == 200

    def state(self, asset_id: str) -> str:
        with transaction(self.ctx.engine) as s:
            asset = s.get(Asset, asset_id)
            return str(asset.state) if asset else "missing"

    def jobs(self) -> list[Job]:
        with transaction(self.ctx.engine) as s:
            return list(s.exec(select(Job).order_by(col(Job.id))).all())

    def actions(self, asset_id: str) -> list[str]:
        return actions(self.ctx, asset_id)

    def redaction_pids(self) -> list[int]:
        supervisor = self.client.app.state.supervisor  # type: ignore[attr-defined]
        (worker,) = [loop for loop in supervisor.loops if loop.name.startswith("gateway-")]
        redactor = worker.redactor
        return [] if redactor is None else [p for p in redactor.worker_pids if p]


def settings_for(tmp_path: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "data_dir": tmp_path / "data",
        "master_key": base64.b64encode(os.urandom(32)).decode(),
        "workers": 1,
        "region": "eu-de",
        "worker_poll_seconds": 3600.0,  # only uploads, retries and leases wake the worker
        "retention_interval_seconds": 0,
        "annotation_pull_interval_seconds": 0,
        "review_pull_interval_seconds": 0,
    }
    values.update(overrides)
    return Settings(**values)


@contextlib.contextmanager
def running_service(settings: Settings, trap: Path) -> Iterator[Service]:
    """The real app, its supervisor and an isolated redaction worker process running the
    fault detectors (the engine, the process boundary and the kill are real)."""
    trap.mkdir(parents=True, exist_ok=True)
    os.environ[fault_detectors.TRAP_DIR_ENV] = str(trap)

    def factory() -> IsolatedRedactor:
        return IsolatedRedactor(
            settings, detector_names=fault_detectors.NAMES, initializer=fault_detectors.register
        )

    app = create_app(settings, redactor_factory=factory)
    with TestClient(app) as client:
        ctx = app.state.ctx
        with transaction(ctx.engine) as s:
            dataset = create_dataset(
                s, ctx, DatasetSpec.model_validate(DATASET_SPEC), actor=Actor("cli", "t")
            )
        token = make_key(ctx, Role.ADMIN)
        yield Service(client, token, dataset.name, trap)
