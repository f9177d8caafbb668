"""Replicas share nothing but the database and the buckets: one API process takes an upload,
a worker process redacts it, another API process serves the redacted copy, and none of them
leaves a file in its own data directory (master key from the environment, as deployed)."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from gateway.core.context import GatewayContext
from gateway.core.db import transaction
from gateway.core.settings import Settings
from gateway.datasets import DatasetSpec, create_dataset
from gateway.lineage import Actor
from gateway.main import create_app
from gateway.pipeline import drain
from gateway.vocabulary import Role
from tests.conftest import DATASET_SPEC, PHOTOS
from tests.gateway.test_api import make_key

pytestmark = pytest.mark.db


def _replica(settings: Settings, tmp_path: Path, name: str, role: str) -> GatewayContext:
    own = settings.model_copy(update={"data_dir": tmp_path / name, "role": role})
    return GatewayContext.open(own)


def _files(folder: Path) -> list[str]:
    return [p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()]


def test_two_api_replicas_and_a_worker_share_only_the_database_and_bucket(
    settings, tmp_path, session_redactor
) -> None:
    api_a = _replica(settings, tmp_path, "api-a", "api")
    api_b = _replica(settings, tmp_path, "api-b", "api")
    worker = _replica(settings, tmp_path, "worker", "worker")
    try:
        with transaction(api_a.engine) as s:
            spec = DatasetSpec.model_validate(DATASET_SPEC)
            dataset = create_dataset(s, api_a, spec, actor=Actor("cli", "test"))
        ingest = make_key(api_a, Role.INGEST, [dataset.id])
        ml = make_key(api_b, Role.ML, [dataset.id])
        photo = (PHOTOS / "masks_maksssksksss44.jpg").read_bytes()
        with TestClient(create_app(api_a.settings, ctx=api_a)) as client_a:
            answer = client_a.post(
                f"/v1/datasets/{dataset.id}/assets",
                files=[("files", ("a.jpg", photo, "image/jpeg"))],
                headers={"Authorization": f"Bearer {ingest}"},
            )
        assert answer.status_code == 201, answer.text
        asset_id = answer.json()["results"][0]["asset_id"]
        assert drain(worker, redactor=session_redactor) >= 1
        with TestClient(create_app(api_b.settings, ctx=api_b)) as client_b:
            served = client_b.get(
                f"/v1/ml/assets/{asset_id}/redacted",
                headers={"Authorization": f"Bearer {ml}", "X-ML-Backend-Region": "eu-de"},
            )
            ready = client_b.get("/health/ready")
        assert served.status_code == 200, served.text
        assert served.content[:2] == b"\xff\xd8" and served.content != photo
        assert ready.status_code == 200, ready.text
        for replica in ("api-a", "api-b", "worker"):
            assert _files(tmp_path / replica) == [], replica
    finally:
        for ctx in (api_a, api_b, worker):
            ctx.close()
