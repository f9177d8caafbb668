"""The FAKE key service (stand-in for a cloud KMS) on loopback, contexts of one region (`eu`:
a process of eu-de), and a dataset one of them makes."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import ThreadingHTTPServer
from pathlib import Path

import pytest
from pydantic import SecretStr

from gateway.core.clock import Clock
from gateway.core.context import GatewayContext
from gateway.core.db import transaction
from gateway.core.models import Dataset
from gateway.core.settings import Settings
from gateway.datasets import DatasetSpec, create_dataset
from gateway.lineage import Actor
from gateway.scaleout.fake_kms import FakeKms, FakeKmsState, serve
from tests.conftest import DATASET_SPEC

REGIONS = ("eu-de", "ch-zh", "us-east")


@dataclass
class KmsService:
    url: str
    kms: FakeKms
    credentials: dict[str, str]
    port: int
    server: ThreadingHTTPServer
    gateway_credential: str  # the gateway-wide one (the scheduler's): no region's key

    def calls_by(self, caller: str) -> list[dict[str, object]]:
        return [entry for entry in self.kms.audit if entry["caller"] == caller]

    def refused(self) -> list[dict[str, object]]:
        return [entry for entry in self.kms.audit if not entry["allowed"]]


@pytest.fixture
def kms_service(tmp_path: Path) -> Iterator[KmsService]:
    home = tmp_path / "kms"  # the key service's own place, not a gateway data directory
    home.mkdir()
    state = FakeKmsState.load(home / "state.json")
    credentials = {region: state.add_region(region) for region in REGIONS}
    gateway_credential = state.add_gateway()
    kms = FakeKms(state)
    server = serve(kms, host="127.0.0.1", port=0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    port = int(server.server_address[1])
    url = f"http://127.0.0.1:{port}"
    yield KmsService(url, kms, credentials, port, server, gateway_credential)
    server.shutdown()
    server.server_close()


def region_settings(settings: Settings, kms: KmsService, region: str, **more: object) -> Settings:
    """A process of `region`: its KMS credential, no local master key, its own data dir."""
    return settings.model_copy(
        update={
            "region": region,
            "master_key": None,
            "kms_url": kms.url,
            "kms_credential": SecretStr(kms.credentials[region]),
            "data_dir": settings.data_dir.parent / f"data-{region}",
            "storage_dir": settings.resolved_storage_dir,  # one shared store (a bucket)
            **more,
        }
    )


def region_ctx(settings: Settings, kms: KmsService, region: str, clock: Clock) -> GatewayContext:
    ctx = GatewayContext.open(region_settings(settings, kms, region))
    ctx.clock = clock
    return ctx


@pytest.fixture
def eu(settings: Settings, kms_service: KmsService, clock: Clock) -> Iterator[GatewayContext]:
    """A process of region eu-de (its dataset keys wrapped under eu-de's key), on the test's
    clock."""
    ctx = region_ctx(settings, kms_service, "eu-de", clock)
    yield ctx
    ctx.close()


def region_dataset(ctx: GatewayContext, name: str = "street-scenes") -> Dataset:
    """A dataset made by `ctx`'s process (its key wrapped under that region's key)."""
    spec = DatasetSpec.model_validate(DATASET_SPEC | {"name": name})
    with transaction(ctx.engine) as s:
        return create_dataset(s, ctx, spec, actor=Actor("cli", "test"))


def gateway_wide_settings(settings: Settings, kms: KmsService, **more: object) -> Settings:
    """The scheduler's: the gateway-wide credential, its own data directory, no store shared."""
    return settings.model_copy(
        update={
            "master_key": None,
            "kms_url": kms.url,
            "kms_credential": SecretStr(kms.gateway_credential),
            "data_dir": settings.data_dir.parent / "data-scheduler",
            "storage_dir": settings.data_dir.parent / "scheduler-blobs",
            **more,
        }
    )
