"""The whole chain over real HTTP: Label Studio asks our ML backend for predictions; the
backend, deployed apart (no gateway context, only the gateway URL and its own ml-role key),
fetches each task's redacted rendition from the real gateway server by asset id."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlmodel import select

from gateway.core.context import GatewayContext
from gateway.core.db import transaction
from gateway.core.models import Asset, AssetState, Dataset, Destination, Role
from gateway.labelstudio.server import LocalLabelStudio
from gateway.labelstudio.sync import sync_dataset
from ml_backend.app import create_app
from ml_backend.sources.base import SourceSet
from tests.labelstudio.fixtures import (
    ADMIN,
    FAST_RETRY,
    PHOTO_NAMES,
    SessionRedactor,
    release_photos,
    served,
)
from tests.labelstudio.helpers import project_tasks, sdk
from tests.ml_backend.conftest import PASSWORD, USER, ml_settings
from tests.ml_backend.test_gateway_http import make_key, records

pytestmark = [pytest.mark.db, pytest.mark.integration]


@pytest.fixture
def http_ml_backend(
    ctx: GatewayContext,
    dataset: Dataset,
    sources: SourceSet,
    gateway_server: str,
    tmp_path: Path,
) -> Iterator[str]:
    key = make_key(ctx, Role.ML, [dataset.id])
    settings = ml_settings(
        tmp_path,
        gateway_url=gateway_server,
        gateway_api_key=key,
        region="eu-de",
        gateway_allow_local_addresses=True,  # the test gateway listens on loopback
    )
    with served(create_app(settings, sources=sources), "ml-backend-http") as url:
        yield url


def test_label_studio_gets_predictions_from_images_fetched_over_the_gateway_api(
    ctx: GatewayContext,
    dataset: Dataset,
    session_redactor: SessionRedactor,
    destination: Destination,
    labelstudio: LocalLabelStudio,
    http_ml_backend: str,
) -> None:
    release_photos(ctx, dataset, session_redactor, list(PHOTO_NAMES))
    report = sync_dataset(
        ctx, dataset_ref=dataset.name, destination_ref=destination.name, actor=ADMIN,
        retry=FAST_RETRY,
    )  # fmt: skip
    project = report.project_id
    # the gateway server's own workers may finish some of the jobs: ask the database
    with transaction(ctx.engine) as s:
        released = list(
            s.exec(
                select(Asset.id).where(
                    Asset.dataset_id == dataset.id, Asset.state == AssetState.RELEASED
                )
            ).all()
        )
    assert released
    with sdk(labelstudio) as ls:
        ls.ml.create(
            project=project,
            url=http_ml_backend,
            auth_method="BASIC_AUTH",
            basic_auth_user=USER,
            basic_auth_pass=PASSWORD,
            title="privacy-gateway (HTTP mode)",
        )
    headers = {"Authorization": f"Token {labelstudio.token}"}
    httpx.post(
        f"{labelstudio.url}/api/dm/actions",
        params={"id": "retrieve_tasks_predictions", "project": project},
        json={"selectedItems": {"all": True, "excluded": []}},
        headers=headers,
        timeout=300,
    ).raise_for_status()
    tasks = project_tasks(labelstudio, project)
    assert {t["data"]["gateway_asset_id"] for t in tasks} == set(released)
    people = 0
    for task in tasks:
        stored = httpx.get(
            f"{labelstudio.url}/api/predictions", params={"task": task["id"]}, headers=headers
        ).json()
        (prediction,) = [p for p in stored if p["task"] == task["id"]]
        assert prediction["model_version"].startswith("lpg-prelabel-")
        people += sum(r["value"]["rectanglelabels"] == ["person"] for r in prediction["result"])
    assert people >= 1
    # every image came through the ml endpoint, as the redacted copy, to the ml key
    served = records(ctx, "ml.image-served")
    assert sorted(r["entity"]["id"] for r in served) == sorted(released)
    assert {r["actor"]["kind"] for r in served} == {"api-key"}
    assert {r["parameters"]["rendition"] for r in served} == {"redacted"}
    predicted = records(ctx, "ml.predicted")
    assert sorted(r["entity"]["id"] for r in predicted) == sorted(released)
