"""The ML backend connected to a real Label Studio project (H6, issue 9): Label Studio checks
/health and /setup with Basic Auth, retrieves predictions for its tasks, and keeps them with
the right labels and coordinates."""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from label_studio_sdk.core.api_error import ApiError
from sqlmodel import select
from starlette.types import Receive, Scope, Send

from gateway.core.context import GatewayContext
from gateway.core.db import transaction
from gateway.core.models import Dataset, Destination, LineageRecord
from gateway.labelstudio.server import LocalLabelStudio
from gateway.labelstudio.sync import sync_dataset
from ml_backend.app import create_app
from ml_backend.settings import MLBackendSettings
from ml_backend.sources.base import SourceSet
from ml_backend.sources.loading import load_sources
from tests.labelstudio.fixtures import ADMIN, FAST_RETRY, served
from tests.labelstudio.helpers import PERSON_BOX, project_tasks, sdk

USER, PASSWORD = "label-studio", "a long shared secret for the ML backend"


@pytest.fixture(scope="module")
def ml_sources() -> SourceSet:
    return load_sources(MLBackendSettings(sources=("faces", "plates", "persons", "vehicles")))


class Recorded:
    """Our backend app, recording which method and path each request used."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.calls: list[tuple[str, str]] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            self.calls.append((scope["method"], scope["path"]))
        await self.app(scope, receive, send)


@pytest.fixture
def ml_backend(
    ctx: GatewayContext, ml_sources: SourceSet, tmp_path: Path, labelstudio: LocalLabelStudio
) -> Iterator[tuple[str, Recorded]]:
    settings = MLBackendSettings(
        basic_auth_user=USER,
        basic_auth_password=PASSWORD,
        label_studio_url=labelstudio.url,  # fit reads each annotation back from here
        label_studio_token=labelstudio.token,
        label_studio_allow_local_addresses=True,  # the test's Label Studio is on loopback
        state_dir=tmp_path / "ml",
        sources=("faces", "plates", "persons", "vehicles"),
    )
    app = Recorded(create_app(settings, ctx=ctx, sources=ml_sources))
    with served(app, "ml-backend-http") as url:
        yield url, app


def test_connecting_as_label_studios_ui_does_works(
    ctx: GatewayContext,
    dataset: Dataset,
    released: list[str],
    destination: Destination,
    labelstudio: LocalLabelStudio,
    ml_backend: tuple[str, Recorded],
) -> None:
    """Settings -> Model -> Connect with Basic Auth: the UI posts its form as below, with the
    free-text "extra params" box empty (`""`); Label Studio stores it and forwards it to /setup."""
    url, recorded = ml_backend
    report = sync_dataset(
        ctx, dataset_ref=dataset.name, destination_ref=destination.name, actor=ADMIN
    )
    form = {
        "url": url,
        "title": "privacy-gateway",
        "description": "",
        "auth_method": "BASIC_AUTH",
        "basic_auth_user": USER,
        "basic_auth_pass": PASSWORD,
        "extra_params": "",
        "is_interactive": False,
        "timeout": 100,
        "project": report.project_id,
    }
    response = httpx.post(
        f"{labelstudio.url}/api/ml",
        json=form,
        headers={"Authorization": f"Token {labelstudio.token}"},
        timeout=120,
    )
    assert response.status_code == 201, response.text
    assert response.json()["extra_params"] == ""  # what /setup was sent
    assert ("POST", "/setup") in recorded.calls
    assert response.json()["state"] == "CO"  # connected


def test_label_studio_connects_and_stores_our_predictions(
    ctx: GatewayContext,
    dataset: Dataset,
    released: list[str],
    destination: Destination,
    labelstudio: LocalLabelStudio,
    ml_backend: tuple[str, Recorded],
) -> None:
    url, recorded = ml_backend
    report = sync_dataset(
        ctx,
        dataset_ref=dataset.name,
        destination_ref=destination.name,
        actor=ADMIN,
        retry=FAST_RETRY,
    )
    project = report.project_id
    with sdk(labelstudio) as ls:
        with pytest.raises(ApiError):  # wrong password: Label Studio refuses to connect
            ls.ml.create(
                project=project,
                url=url,
                auth_method="BASIC_AUTH",
                basic_auth_user=USER,
                basic_auth_pass="wrong",
            )
        backend = ls.ml.create(
            project=project,
            url=url,
            auth_method="BASIC_AUTH",
            basic_auth_user=USER,
            basic_auth_pass=PASSWORD,
            title="privacy-gateway",
        )
    assert ("GET", "/health") in recorded.calls and ("POST", "/setup") in recorded.calls
    assert backend.model_version and backend.model_version.startswith("lpg-prelabel-")

    headers = {"Authorization": f"Token {labelstudio.token}"}
    response = httpx.post(
        f"{labelstudio.url}/api/dm/actions",
        params={"id": "retrieve_tasks_predictions", "project": project},
        json={"selectedItems": {"all": True, "excluded": []}},
        headers=headers,
        timeout=300,
    )
    response.raise_for_status()
    assert ("POST", "/predict") in recorded.calls

    label_config = httpx.get(f"{labelstudio.url}/api/projects/{project}", headers=headers).json()[
        "label_config"
    ]
    tasks = project_tasks(labelstudio, project)
    found_people = 0
    for task in tasks:
        stored = httpx.get(
            f"{labelstudio.url}/api/predictions", params={"task": task["id"]}, headers=headers
        ).json()
        stored = [p for p in stored if p["task"] == task["id"]]
        # what the backend answers for this task, asked directly over HTTP with Basic Auth
        direct = httpx.post(
            f"{url}/predict",
            json={
                "tasks": [{"id": task["id"], "data": task["data"]}],
                "project": project,
                "label_config": label_config,
            },
            auth=(USER, PASSWORD),
            timeout=120,
        ).json()["results"][0]
        assert len(stored) == len(direct) == 1, (stored, direct)
        assert stored[0]["model_version"] == backend.model_version
        assert stored[0]["score"] == pytest.approx(direct[0]["score"])
        assert _regions(stored[0]["result"]) == _regions(direct[0]["result"])
        for r in stored[0]["result"]:
            assert r["to_name"] == "image" and r["type"] == "rectanglelabels"
            assert all(0 <= r["value"][k] <= 100 for k in ("x", "y", "width", "height"))
        found_people += sum(
            r["value"]["rectanglelabels"] == ["person"] for r in stored[0]["result"]
        )
    assert found_people >= 1
    _annotations_reach_fit(ctx, labelstudio, project, url, tasks, headers)


def _annotations_reach_fit(
    ctx: GatewayContext,
    labelstudio: LocalLabelStudio,
    project: int,
    url: str,
    tasks: list[dict[str, Any]],
    headers: dict[str, str],
) -> None:
    """Label Studio's auto-created webhook carries no credentials: the operator adds the
    Basic Auth header to it once; then annotations reach `fit`."""
    hooks = httpx.get(
        f"{labelstudio.url}/api/webhooks", params={"project": project}, headers=headers
    ).json()
    (hook,) = [h for h in hooks if h["url"] == f"{url}/webhook"]
    token = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    httpx.patch(
        f"{labelstudio.url}/api/webhooks/{hook['id']}",
        json={"headers": {"Authorization": f"Basic {token}"}},
        headers=headers,
    ).raise_for_status()
    task = tasks[0]
    with sdk(labelstudio) as ls:
        ls.annotations.create(task["id"], result=[PERSON_BOX])
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # the webhook may outlive Label Studio's 1 s wait
        with transaction(ctx.engine) as s:
            rows = s.exec(
                select(LineageRecord).where(
                    LineageRecord.action == "ml.calibrated",
                    LineageRecord.entity_id == task["data"]["gateway_asset_id"],
                )
            ).all()
        if rows:
            break
        time.sleep(0.1)
    assert rows, "the annotation never reached fit"


def _regions(results: list[dict[str, Any]]) -> set[tuple[Any, ...]]:
    return {
        (
            r["from_name"],
            r["value"]["rectanglelabels"][0],
            *(round(r["value"][k], 3) for k in ("x", "y", "width", "height")),
        )
        for r in results
    }
