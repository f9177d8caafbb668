"""Fixtures for the ML backend: real redacted demo photos released through the real pipeline,
the real pre-label models (loaded once), and the app behind FastAPI's TestClient."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from gateway.core.context import GatewayContext
from gateway.core.db import transaction
from gateway.core.models import Asset, Dataset
from gateway.core.settings import Settings
from gateway.ingest import Upload, ingest_upload
from gateway.lineage import Actor
from gateway.pipeline import RedactionOutcome, drain
from gateway.redactor import IsolatedRedactor
from ml_backend.app import create_app
from ml_backend.readback import HeldAnnotation, HeldTask
from ml_backend.settings import MLBackendSettings
from ml_backend.sources.base import SourceSet
from ml_backend.sources.loading import load_sources
from tests.conftest import PHOTOS

USER, PASSWORD = "label-studio", "correct horse battery staple"
PEOPLE = "masks_maksssksksss156.jpg"
PLATE = "dashcam_dayride_type1_001_t607.jpg"
PHOTO_NAMES = (PEOPLE, PLATE)
BOXES_CONFIG = """
<View>
  <Image name="image" value="$image"/>
  <RectangleLabels name="box" toName="image">
    <Label value="Person"/><Label value="Licence plate"/><Label value="Face"/>
  </RectangleLabels>
</View>"""


def auth(user: str = USER, password: str = PASSWORD) -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


class MemoisedRedactor:
    """The real isolated redaction engine, each distinct photo redacted once per session."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._engine: IsolatedRedactor | None = None
        self._done: dict[str, RedactionOutcome] = {}

    def redact(self, data: bytes) -> RedactionOutcome:
        key = hashlib.sha256(data).hexdigest()
        if key not in self._done:
            if self._engine is None:
                self._engine = IsolatedRedactor(self._settings)
            self._done[key] = self._engine.redact(data)
        return self._done[key]

    def close(self) -> None:
        if self._engine is not None:
            self._engine.close()


@pytest.fixture(scope="session")
def redactor(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MemoisedRedactor]:
    memo = MemoisedRedactor(Settings(data_dir=tmp_path_factory.mktemp("redactor")))
    yield memo
    memo.close()


@pytest.fixture(scope="session")
def sources() -> SourceSet:
    return load_sources(
        MLBackendSettings(sources=("faces", "plates", "text", "persons", "vehicles"))
    )


@dataclass
class Released:
    ids: dict[str, str]
    dataset: Dataset

    def task(self, name: str, task_id: int = 1) -> dict[str, Any]:
        """A task as the sync writes it (TaskData); the URL is never followed."""
        return {
            "id": task_id,
            "data": {
                "image": "https://labelstudio.invalid/should-never-be-fetched.jpg",
                "gateway_asset_id": self.ids[name],
                "gateway_dataset_id": self.dataset.id,
            },
        }


@pytest.fixture
def released(ctx: GatewayContext, dataset: Dataset, redactor: MemoisedRedactor) -> Released:
    ids = {}
    for name in PHOTO_NAMES:  # one transaction per file, as the CLI import does
        with transaction(ctx.engine) as session:
            upload = Upload(name, (PHOTOS / name).read_bytes())
            outcome = ingest_upload(session, ctx, dataset, upload, actor=Actor("cli", "t"))
            ids[name] = outcome.asset_id
    assert drain(ctx, redactor=redactor) == len(PHOTO_NAMES)
    with transaction(ctx.engine) as session:
        for asset_id in ids.values():
            asset = session.get(Asset, asset_id)
            assert asset is not None and asset.state == "released"
    return Released(ids, dataset)


def ml_settings(tmp_path: Path, **overrides: Any) -> MLBackendSettings:
    values: dict[str, Any] = {
        "basic_auth_user": USER,
        "basic_auth_password": PASSWORD,
        "state_dir": tmp_path / "ml-state",
        "sources": ("faces", "plates", "text", "persons", "vehicles"),
    }
    return MLBackendSettings(**(values | overrides))


@pytest.fixture
def client(ctx: GatewayContext, sources: SourceSet, tmp_path: Path) -> Iterator[TestClient]:
    app = create_app(ml_settings(tmp_path), ctx=ctx, sources=sources)
    with TestClient(app) as test_client:
        yield test_client


@dataclass
class HeldInLabelStudio:
    """Stands in for Label Studio's API where no server runs (unit tests); the same reader
    interface the real `LabelStudioReader` implements, used against the real server in
    tests/labelstudio/test_ml_backend_connection.py."""

    annotations: dict[int, HeldAnnotation] = field(default_factory=dict)
    tasks: dict[int, HeldTask] = field(default_factory=dict)
    configs: dict[int, str] = field(default_factory=dict)

    def hold(
        self,
        annotation_id: int,
        task: dict[str, Any],
        result: list[Any],
        *,
        project: int,
        config: str,
    ) -> None:
        self.tasks[task["id"]] = HeldTask(id=task["id"], project=project, data=task["data"])
        self.configs[project] = config
        self.annotations[annotation_id] = HeldAnnotation(
            id=annotation_id, task=task["id"], project=project, result=result, was_cancelled=False
        )

    def annotation(self, annotation_id: int) -> HeldAnnotation | None:
        return self.annotations.get(annotation_id)

    def task(self, task_id: int) -> HeldTask | None:
        return self.tasks.get(task_id)

    def label_config(self, project_id: int) -> str | None:
        return self.configs.get(project_id)

    def close(self) -> None:
        return None


@pytest.fixture
def gateway_server(released: Released, gateway_server: str) -> str:
    """The shared gateway server, started only after `released` has drained its jobs: its own
    background workers would otherwise take some of them (and `released` would fail)."""
    return gateway_server
