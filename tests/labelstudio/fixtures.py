"""Loaded once as a plugin by tests/conftest.py, so every folder shares them: one real Label
Studio server for the whole session, a real gateway HTTP server per test,
and released assets made by the real redaction engine (each photo redacted once per session)."""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pytest
import uvicorn

from gateway.core.context import GatewayContext
from gateway.core.db import transaction
from gateway.core.models import Asset, AssetState, Dataset, Destination
from gateway.ingest import Upload, ingest_upload
from gateway.labelstudio.client import RetryPolicy
from gateway.labelstudio.destinations import DestinationSpec, register_destination
from gateway.labelstudio.server import LocalLabelStudio, free_port
from gateway.labelstudio.sync import SyncReport, sync_dataset
from gateway.lineage import Actor
from gateway.main import create_app
from gateway.pipeline import RedactionOutcome, drain
from tests.conftest import PHOTOS

ADMIN = Actor("cli", "test-admin")
FAST_RETRY = RetryPolicy(attempts=3, first_delay=0.05)


def sync_as_admin(
    ctx: GatewayContext, dataset: Dataset, destination: Destination, **kwargs: Any
) -> SyncReport:
    """`sync_dataset` of `dataset` to `destination` as the test's admin, retrying fast."""
    return sync_dataset(
        ctx,
        dataset_ref=dataset.name,
        destination_ref=destination.name,
        actor=ADMIN,
        retry=FAST_RETRY,
        **kwargs,
    )


PHOTO_NAMES = [
    "masks_maksssksksss44.jpg",
    "dashcam_dayride_type1_001_t607.jpg",
    "masks_maksssksksss102.jpg",
    "masks_maksssksksss156.jpg",
    "masks_maksssksksss201.jpg",
]


@pytest.fixture(scope="session")
def labelstudio(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalLabelStudio]:
    data_dir = tmp_path_factory.mktemp("labelstudio")
    # the alternative image route (local-files destinations) is served from here
    (data_dir / "local-files").mkdir()
    server = LocalLabelStudio(data_dir=data_dir, local_files_root=data_dir / "local-files")
    server.start()
    try:
        yield server
    finally:
        server.stop()


class SessionRedactor:
    """The real isolated redaction engine, run once per distinct photo per test session."""

    def __init__(self) -> None:
        self._real: Any = None
        self._done: dict[str, RedactionOutcome] = {}
        self._lock = threading.Lock()

    def redact(self, data: bytes) -> RedactionOutcome:
        digest = hashlib.sha256(data).hexdigest()
        with self._lock:
            if digest not in self._done:
                if self._real is None:
                    from gateway.core.settings import Settings
                    from gateway.redactor import IsolatedRedactor

                    self._real = IsolatedRedactor(Settings(workers=1))
                self._done[digest] = self._real.redact(data)
            return self._done[digest]

    def for_policy(self, policy: Any) -> Any:
        """Follow the dataset's redaction policy (as the service's real engine does): the
        cached default engine for the default policy, the real engine under any other."""
        from redaction.policy import RedactionPolicy

        return self if policy == RedactionPolicy() else self.under_policy(policy)

    def under_policy(self, policy: Any) -> Any:
        """The same real engine under another redaction policy (its own worker, kept while
        the session lasts): what re-processing under a new policy version runs."""
        with self._lock:
            if self._real is None:
                from gateway.core.settings import Settings
                from gateway.redactor import IsolatedRedactor

                self._real = IsolatedRedactor(Settings(workers=1))
            return self._real.for_policy(policy)

    def shutdown(self) -> None:
        """End the session's worker pool. Deliberately not `close`: a gateway app's background
        workers close the redactor they were given when the app stops, and a test's app
        stopping must not end the pool the next test redacts with."""
        if self._real is not None:
            self._real.close()


@pytest.fixture(scope="session")
def session_redactor() -> Iterator[SessionRedactor]:
    redactor = SessionRedactor()
    yield redactor
    redactor.shutdown()


@pytest.fixture
def released(ctx: GatewayContext, dataset: Dataset, session_redactor: SessionRedactor) -> list[str]:
    """The sample photos ingested and redacted by the real engine; the released asset ids."""
    return release_photos(ctx, dataset, session_redactor, PHOTO_NAMES)


def release_photos(
    ctx: GatewayContext, dataset: Dataset, redactor: SessionRedactor, names: list[str]
) -> list[str]:
    ids = []
    for name in names:
        with transaction(ctx.engine) as s:
            upload = Upload(name, (PHOTOS / name).read_bytes(), subject_id=f"subject-{name}")
            ids.append(ingest_upload(s, ctx, dataset, upload, actor=ADMIN).asset_id)
    drain(ctx, redactor=redactor)
    with transaction(ctx.engine) as s:
        states = {i: s.get(Asset, i).state for i in ids}  # type: ignore[union-attr]
    return [i for i in ids if states[i] == AssetState.RELEASED]


@dataclass
class GatewayServer:
    url: str
    server: uvicorn.Server
    thread: threading.Thread


@pytest.fixture
def gateway_server(ctx: GatewayContext, session_redactor: SessionRedactor) -> Iterator[str]:
    """The real gateway app on a loopback port (webhooks and image URLs need real HTTP)."""
    app = create_app(ctx.settings, ctx=ctx, redactor_factory=lambda: session_redactor)
    with served(app, "gateway-http") as url:
        yield url


@contextmanager
def served(app: Any, name: str) -> Iterator[str]:
    """`app` served by uvicorn on a free loopback port, on a thread called `name`: its URL."""
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name=name, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)  # polling startup, not timing anything
    if not server.started:
        raise RuntimeError(f"{name}: the server did not start")
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(30)


@pytest.fixture
def destination(
    ctx: GatewayContext, labelstudio: LocalLabelStudio, gateway_server: str
) -> Destination:
    return add_destination(ctx, labelstudio, gateway_server, name="annotators-eu", region="eu-de")


def add_destination(
    ctx: GatewayContext, labelstudio: LocalLabelStudio, gateway_url: str, *, name: str, region: str
) -> Destination:
    spec = DestinationSpec.model_validate(
        {
            "name": name,
            "url": labelstudio.url,
            "token": labelstudio.token,
            "region": region,
            "gateway_url": gateway_url,
            "allow_local_addresses": True,  # the test server listens on loopback
        }
    )
    with transaction(ctx.engine) as s:
        return register_destination(ctx, s, spec, actor=ADMIN, retry=FAST_RETRY)
