"""Shared fixtures: a real database (SQLite file, or a fresh PostgreSQL schema), real keys,
a real blob store, an injected clock."""

from __future__ import annotations

import base64
import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings as hypothesis_settings
from sqlalchemy import create_engine, text

from gateway.core.context import GatewayContext
from gateway.core.db import make_engine, migrate
from gateway.core.keys import KeyProvider, LocalMasterKey
from gateway.core.models import Dataset
from gateway.core.settings import Settings
from gateway.core.storage import BlobStore, LocalBlobStore

# Property tests explore the same examples on every run of the test command (CI passes or fails
# the same way each time); HYPOTHESIS_PROFILE=explore draws fresh ones for a hunt.
hypothesis_settings.register_profile("repeatable", derandomize=True, print_blob=True)
hypothesis_settings.register_profile("explore", derandomize=False, print_blob=True)
hypothesis_settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "repeatable"))

# one session-wide Label Studio server (and redactor pool) for every folder that needs it
pytest_plugins = ["tests.labelstudio.fixtures"]

PHOTOS = Path(__file__).parent.parent / "gateway" / "demo_photos"
POSTGRES_URL = os.environ.get("GATEWAY_TEST_POSTGRES_URL")


class FakeClock:
    """A clock the test moves by hand (no sleeping)."""

    def __init__(self) -> None:
        self.now = datetime(2026, 1, 15, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        self.now += timedelta(microseconds=1)
        return self.now

    def advance(self, **kwargs: float) -> None:
        self.now += timedelta(**kwargs)


def _backends() -> list[str]:
    return ["sqlite", "postgresql"] if POSTGRES_URL else ["sqlite"]


@pytest.fixture(params=_backends())
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'gateway.db'}"
        return
    assert POSTGRES_URL is not None
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(POSTGRES_URL)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    sep = "&" if "?" in POSTGRES_URL else "?"
    yield f"{POSTGRES_URL}{sep}options=-csearch_path%3D{schema}"
    with admin.begin() as conn:
        conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    key = base64.b64encode(os.urandom(32)).decode()
    return Settings(
        data_dir=tmp_path / "data",
        database_url=database_url,
        master_key=key,
        workers=1,
        region="eu-de",
    )


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def make_context(settings: Settings, clock: Any, store: BlobStore) -> GatewayContext:
    """A context on the test's database (migrated), local master key, `store` and `clock`."""
    engine = make_engine(settings.resolved_database_url)
    migrate(engine)
    assert settings.master_key is not None
    master = LocalMasterKey(base64.b64decode(settings.master_key.get_secret_value()))
    return GatewayContext(
        settings=settings, engine=engine, keys=KeyProvider(master), store=store, clock=clock
    )


@pytest.fixture
def ctx(settings: Settings, clock: FakeClock) -> Iterator[GatewayContext]:
    context = make_context(settings, clock, LocalBlobStore(settings.resolved_storage_dir))
    yield context
    context.close()


@pytest.fixture
def dataset(ctx: GatewayContext) -> Dataset:
    from gateway.core.db import transaction
    from gateway.datasets import DatasetSpec, create_dataset
    from gateway.lineage import Actor

    spec = DatasetSpec.model_validate(DATASET_SPEC)
    with transaction(ctx.engine) as session:
        return create_dataset(session, ctx, spec, actor=Actor("cli", "test"))


DATASET_SPEC = {
    "name": "street-scenes",
    "purpose": "Train a pedestrian detector for driver assistance research.",
    "controller": "Example Lab",
    "legal_basis": "legitimate_interests",
    "data_subject_categories": ["passers-by"],
    "personal_data_categories": ["facial images"],
    "ontology": {"labels": [{"name": "person", "control": "box"}]},
}
