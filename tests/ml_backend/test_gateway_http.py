"""HTTP mode: the ML backend fetches redacted renditions from a real gateway HTTP server with
its own ml-role API key, and nothing else. The gateway runs under uvicorn on a loopback port
(the shared `gateway_server` fixture); the backend is driven through FastAPI's TestClient."""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlmodel import col, select

from gateway.apikeys import create_api_key
from gateway.core.context import GatewayContext
from gateway.core.db import transaction
from gateway.core.models import Asset, AssetState, LineageRecord, Role
from gateway.lineage import Actor, verify_chain
from ml_backend.app import MissingConfiguration, create_app
from ml_backend.sources.base import SourceSet
from tests.conftest import PHOTOS
from tests.ml_backend.conftest import (
    BOXES_CONFIG,
    PEOPLE,
    PLATE,
    HeldInLabelStudio,
    Released,
    auth,
    ml_settings,
)

pytestmark = [pytest.mark.db, pytest.mark.integration]
ADMIN = Actor("cli", "test-admin")
SERVED = "ml.image-served"
INTERACTIVE = """
<View>
  <Image name="image" value="$image"/>
  <RectangleLabels name="box" toName="image" smart="true"><Label value="Person"/></RectangleLabels>
  <PolygonLabels name="outline" toName="image"><Label value="Person"/></PolygonLabels>
  <BrushLabels name="mask" toName="image"><Label value="Person"/></BrushLabels>
</View>"""


def make_key(ctx: GatewayContext, role: Role, scope: list[str] | None = None) -> str:
    with transaction(ctx.engine) as s:
        _, token = create_api_key(
            s,
            role=role,
            label=f"{role.value} key",
            dataset_scope=scope,
            expires_at=None,
            pepper=ctx.keys.api_key_pepper(),
            actor=ADMIN,
            now=ctx.clock(),
            region=ctx.settings.region,
        )
    return token


def records(ctx: GatewayContext, action: str) -> list[dict[str, Any]]:
    with transaction(ctx.engine) as s:
        rows = s.exec(
            select(LineageRecord)
            .where(LineageRecord.action == action)
            .order_by(col(LineageRecord.seq))
        ).all()
        return [json.loads(r.payload) for r in rows]


def predict(client: TestClient, tasks: list[dict[str, Any]]) -> list[Any]:
    body = {"tasks": tasks, "project": "3", "label_config": BOXES_CONFIG}
    response = client.post("/predict", json=body, headers=auth())
    assert response.status_code == 200, response.text
    results: list[Any] = response.json()["results"]
    return results


def backend(
    tmp_path: Path, sources: SourceSet, gateway_url: str, key: str, **overrides: Any
) -> TestClient:
    """The ML backend in HTTP mode: no gateway context at all, only the URL and its key."""
    values: dict[str, Any] = {
        "gateway_url": gateway_url,
        "gateway_api_key": key,
        "gateway_allow_local_addresses": True,  # the test gateway listens on loopback
    }
    held = overrides.pop("annotations", None)
    settings = ml_settings(tmp_path, **({"region": "eu-de"} | values | overrides))
    return TestClient(create_app(settings, sources=sources, annotations=held))


@pytest.fixture
def ml_key(ctx: GatewayContext, released: Released) -> str:
    return make_key(ctx, Role.ML, [released.dataset.id])


@pytest.fixture
def http_client(
    tmp_path: Path, sources: SourceSet, ml_key: str, gateway_server: str
) -> Iterator[TestClient]:
    # ml_key first: the assets are released (drained here) before the gateway server's own
    # workers start, which would otherwise take some of the jobs
    with backend(tmp_path, sources, gateway_server, ml_key) as client:
        yield client


def _set_state(ctx: GatewayContext, asset_id: str, state: AssetState) -> None:
    with transaction(ctx.engine) as s:
        asset = s.get(Asset, asset_id)
        assert asset is not None
        asset.state = state
        s.add(asset)


# --------------------------------------------------------------------------- predictions


def test_predictions_come_from_the_fetched_redacted_images(
    http_client: TestClient,
    client: TestClient,
    released: Released,
    ctx: GatewayContext,
    ml_key: str,
) -> None:
    tasks = [released.task(PEOPLE, 1), released.task(PLATE, 2)]
    over_http = predict(http_client, tasks)
    assert all(len(r) == 1 for r in over_http)
    assert over_http[0][0]["result"], "the people photo gets boxes"
    # the same predictions as the embedded backend reading the same redacted blobs in-process
    in_process = predict(client, tasks)
    assert over_http == in_process
    key_id = ml_key.split("_")[1]
    served = records(ctx, SERVED)
    assert [r["entity"]["id"] for r in served] == [released.ids[PEOPLE], released.ids[PLATE]]
    with transaction(ctx.engine) as s:
        digests = {i: s.get(Asset, i).redacted_sha256 for i in released.ids.values()}  # type: ignore[union-attr]
    for r in served:
        assert r["actor"] == {"kind": "api-key", "id": key_id}
        assert r["inputs"]["redacted_sha256"] == digests[r["entity"]["id"]]
        assert r["parameters"] == {"rendition": "redacted", "backend_region": "eu-de"}
    predicted = [r for r in records(ctx, "ml.predicted") if r["actor"]["id"] == key_id]
    assert [r["entity"]["id"] for r in predicted] == [released.ids[PEOPLE], released.ids[PLATE]]
    assert predicted[0]["outputs"]["results"] == len(over_http[0][0]["result"])
    with transaction(ctx.engine) as s:
        verify_chain(s)


def test_the_gateway_serves_the_redacted_copy_never_the_original(
    gateway_server: str, released: Released, ctx: GatewayContext, ml_key: str
) -> None:
    asset_id = released.ids[PEOPLE]
    response = httpx.get(
        f"{gateway_server}/v1/ml/assets/{asset_id}/redacted",
        headers={"Authorization": f"Bearer {ml_key}", "X-ML-Backend-Region": "eu-de"},
    )
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    digest = hashlib.sha256(response.content).hexdigest()
    with transaction(ctx.engine) as s:
        asset = s.get(Asset, asset_id)
        assert asset is not None
        assert digest == asset.redacted_sha256 == response.headers["x-redacted-sha256"]
    assert response.content != (PHOTOS / PEOPLE).read_bytes()
    assert response.headers["x-gateway-dataset-id"] == released.dataset.id
    # no region declared: refused before anything is read
    bare = httpx.get(
        f"{gateway_server}/v1/ml/assets/{asset_id}/redacted",
        headers={"Authorization": f"Bearer {ml_key}"},
    )
    assert bare.status_code == 422 and bare.json()["code"] == "invalid-request"
    assert len(records(ctx, SERVED)) == 1


# --------------------------------------------------------------------------- refusals


@pytest.mark.parametrize("kind", ["admin-role", "ingest-role", "other-dataset"])
def test_a_key_without_the_ml_role_or_out_of_scope_gets_nothing(
    kind: str,
    tmp_path: Path,
    sources: SourceSet,
    gateway_server: str,
    released: Released,
    ctx: GatewayContext,
) -> None:
    key = {
        "admin-role": lambda: make_key(ctx, Role.ADMIN),
        "ingest-role": lambda: make_key(ctx, Role.INGEST, [released.dataset.id]),
        "other-dataset": lambda: make_key(ctx, Role.ML, ["00000000-0000-4000-8000-00000000abcd"]),
    }[kind]()
    with backend(tmp_path, sources, gateway_server, key) as client:
        assert predict(client, [released.task(PEOPLE), released.task(PLATE, 2)]) == [[], []]
    direct = httpx.get(
        f"{gateway_server}/v1/ml/assets/{released.ids[PEOPLE]}/redacted",
        headers={"Authorization": f"Bearer {key}", "X-ML-Backend-Region": "eu-de"},
    )
    assert direct.status_code == (404 if kind == "other-dataset" else 403)
    assert records(ctx, SERVED) == [] and records(ctx, "ml.predicted") == []


def test_an_unknown_key_gets_nothing(
    tmp_path: Path, sources: SourceSet, gateway_server: str, released: Released, ctx: GatewayContext
) -> None:
    forged = "lpg_000000000000_" + "x" * 43
    with backend(tmp_path, sources, gateway_server, forged) as client:
        assert predict(client, [released.task(PEOPLE)]) == [[]]
    assert records(ctx, SERVED) == []


@pytest.mark.parametrize(
    "state",
    [AssetState.QUARANTINED, AssetState.PROCESSING, AssetState.RECEIVED, AssetState.ERASED],
)
def test_an_asset_that_is_not_released_yields_no_prediction(
    state: AssetState,
    http_client: TestClient,
    gateway_server: str,
    released: Released,
    ctx: GatewayContext,
    ml_key: str,
) -> None:
    _set_state(ctx, released.ids[PEOPLE], state)
    assert predict(http_client, [released.task(PEOPLE)]) == [[]]
    direct = httpx.get(
        f"{gateway_server}/v1/ml/assets/{released.ids[PEOPLE]}/redacted",
        headers={"Authorization": f"Bearer {ml_key}", "X-ML-Backend-Region": "eu-de"},
    )
    assert direct.status_code == 404
    assert records(ctx, SERVED) == [] and records(ctx, "ml.predicted") == []


def test_an_original_deleted_after_release_is_still_served_but_not_after_quarantine(
    http_client: TestClient, client: TestClient, released: Released, ctx: GatewayContext
) -> None:
    """Both modes apply the gateway's one rule (`gateway.ml_images.servable_redacted`)."""
    from gateway.asset_states import record_original_deleted, transition

    def delete_original(s: Any, asset: Asset) -> None:
        record_original_deleted(s, asset, actor=ADMIN, now=ctx.clock(), region="eu-de")

    with transaction(ctx.engine) as s:
        asset = s.get(Asset, released.ids[PEOPLE])
        assert asset is not None
        delete_original(s, asset)
        assert asset.state == AssetState.RELEASED
    assert len(predict(http_client, [released.task(PEOPLE)])[0]) == 1
    assert len(predict(client, [released.task(PEOPLE)])[0]) == 1
    with transaction(ctx.engine) as s:
        asset = s.get(Asset, released.ids[PLATE])
        assert asset is not None
        transition(s, asset, AssetState.QUARANTINED, actor=ADMIN, now=ctx.clock(), region="eu-de")
        delete_original(s, asset)
    assert predict(http_client, [released.task(PLATE)]) == [[]]
    assert predict(client, [released.task(PLATE)]) == [[]]


def test_a_foreign_url_in_the_task_is_never_fetched(
    http_client: TestClient, released: Released, ctx: GatewayContext
) -> None:
    hits: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            hits.append(self.path)
            self.send_response(200)
            self.send_header("Content-Type", "image/jpeg")
            self.end_headers()
            self.wfile.write((PHOTOS / PEOPLE).read_bytes())

        def log_message(self, *_: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/photo.jpg"
        with_asset = released.task(PEOPLE, 3)
        with_asset["data"]["image"] = url
        tasks = [
            {"id": 1, "data": {"image": url}},
            {"id": 2, "data": {"image": url, "gateway_asset_id": f"../../{url}"}},
            with_asset,
        ]
        results = predict(http_client, tasks)
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
    assert hits == []
    assert results[:2] == [[], []] and len(results[2]) == 1  # by asset id, from the gateway
    assert [r["entity"]["id"] for r in records(ctx, SERVED)] == [released.ids[PEOPLE]]


def test_a_task_claiming_another_dataset_gets_nothing(
    http_client: TestClient, released: Released, ctx: GatewayContext
) -> None:
    task = released.task(PEOPLE)
    task["data"]["gateway_dataset_id"] = "00000000-0000-4000-8000-00000000abcd"
    assert predict(http_client, [task]) == [[]]
    assert records(ctx, "ml.predicted") == []


def test_residency_denial_for_the_backend_region_gives_no_prediction(
    tmp_path: Path,
    sources: SourceSet,
    gateway_server: str,
    released: Released,
    ctx: GatewayContext,
    ml_key: str,
) -> None:
    with backend(tmp_path, sources, gateway_server, ml_key, region="us-east") as far_away:
        assert predict(far_away, [released.task(PLATE)]) == [[]]
    blocked = records(ctx, "residency.blocked")
    assert len(blocked) == 1
    assert blocked[0]["parameters"]["point"] == "ml_backend"
    assert blocked[0]["entity"]["id"] == released.ids[PLATE]
    assert records(ctx, SERVED) == [] and records(ctx, "ml.predicted") == []
    direct = httpx.get(
        f"{gateway_server}/v1/ml/assets/{released.ids[PLATE]}/redacted",
        headers={"Authorization": f"Bearer {ml_key}", "X-ML-Backend-Region": "us-east"},
    )
    assert direct.status_code == 403 and direct.json()["code"] == "residency-violation"


def test_a_tampered_redacted_blob_is_not_served(
    http_client: TestClient, gateway_server: str, released: Released, ctx: GatewayContext
) -> None:
    with transaction(ctx.engine) as s:
        asset = s.get(Asset, released.ids[PEOPLE])
        assert asset is not None and asset.redacted_blob
        blob = asset.redacted_blob
    ctx.store.put(blob, (PHOTOS / PEOPLE).read_bytes())  # e.g. an original written over it
    assert predict(http_client, [released.task(PEOPLE)]) == [[]]
    assert records(ctx, SERVED) == []


def test_the_response_size_is_bounded(
    tmp_path: Path,
    sources: SourceSet,
    gateway_server: str,
    released: Released,
    ctx: GatewayContext,
    ml_key: str,
) -> None:
    with backend(tmp_path, sources, gateway_server, ml_key, max_image_bytes=2048) as small:
        assert predict(small, [released.task(PEOPLE)]) == [[]]
    assert records(ctx, "ml.predicted") == []


def test_an_unreachable_gateway_gives_no_prediction_not_an_error(
    tmp_path: Path, sources: SourceSet, released: Released, ml_key: str
) -> None:
    from gateway.labelstudio.server import free_port

    dead = f"http://127.0.0.1:{free_port()}"
    with backend(tmp_path, sources, dead, ml_key, gateway_timeout_seconds=2) as client:
        assert predict(client, [released.task(PEOPLE)]) == [[]]


# --------------------------------------------------------------------------- configuration, uses


def test_http_mode_needs_a_key_and_a_region(tmp_path: Path, sources: SourceSet) -> None:
    with pytest.raises(MissingConfiguration, match="GATEWAY_ML_GATEWAY_API_KEY"):
        create_app(ml_settings(tmp_path, gateway_url="http://gw.example"), sources=sources)
    with pytest.raises(MissingConfiguration, match="GATEWAY_ML_REGION"):
        create_app(
            ml_settings(tmp_path, gateway_url="http://gw.example", gateway_api_key="lpg_a_b"),
            sources=sources,
        )
    with pytest.raises(MissingConfiguration, match="GATEWAY_ML_GATEWAY_URL"):
        create_app(ml_settings(tmp_path), sources=sources)  # neither URL nor embedded context
    key_file = tmp_path / "ml.key"
    key_file.write_text("lpg_from_file\n")
    settings = ml_settings(tmp_path, gateway_api_key_file=key_file, gateway_api_key="lpg_env")
    assert settings.gateway_key() == "lpg_from_file"
    with pytest.raises(ValueError, match="gateway_url"):
        ml_settings(tmp_path, gateway_url="file:///etc/passwd")


def test_the_uses_endpoint_takes_only_ml_records_of_served_images(
    gateway_server: str, released: Released, ctx: GatewayContext, ml_key: str
) -> None:
    asset_id = released.ids[PEOPLE]
    with transaction(ctx.engine) as s:
        digest = s.get(Asset, asset_id).redacted_sha256  # type: ignore[union-attr]
    url = f"{gateway_server}/v1/ml/assets/{asset_id}/uses"
    headers = {"Authorization": f"Bearer {ml_key}", "X-ML-Backend-Region": "eu-de"}
    good = {"action": "ml.assisted", "redacted_sha256": digest, "outputs": {"results": 2}}
    assert httpx.post(url, json=good, headers=headers).status_code == 201
    bad_bodies = [
        good | {"action": "asset.released"},
        good | {"redacted_sha256": "0" * 64},
        good | {"outputs": {"score": 0.5}},
        good | {"extra": 1},
    ]
    for body in bad_bodies:
        response = httpx.post(url, json=body, headers=headers)
        assert response.status_code == 422, body
    admin = {"Authorization": f"Bearer {make_key(ctx, Role.ADMIN)}", "X-ML-Backend-Region": "eu-de"}
    assert httpx.post(url, json=good, headers=admin).status_code == 403
    assert len(records(ctx, "ml.assisted")) == 1


def test_serve_in_http_mode_without_a_key_fails_before_loading_models(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("GATEWAY_ML_", "GATEWAY_DATA_DIR", "GATEWAY_DATABASE_URL"))
    }
    env |= {
        "GATEWAY_DATA_DIR": str(tmp_path / "nothing-here"),
        "GATEWAY_ML_BASIC_AUTH_USER": "u",
        "GATEWAY_ML_BASIC_AUTH_PASSWORD": "p",
        "GATEWAY_ML_GATEWAY_URL": "http://127.0.0.1:9",
        "GATEWAY_ML_REGION": "eu-de",
    }
    code = "from gateway.cli import main; main()"
    done = subprocess.run(
        [sys.executable, "-c", code, "ml-backend", "serve", "--port", "0"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 1, done.stderr
    assert "ml-backend-configuration" in done.stderr
    assert "GATEWAY_ML_GATEWAY_API_KEY" in done.stderr
    assert "loading pre-label models" not in done.stderr
    assert not (tmp_path / "nothing-here").exists()  # no gateway database or store opened


def test_assist_and_fit_in_http_mode_record_their_uses_under_the_ml_key(
    tmp_path: Path,
    sources: SourceSet,
    released: Released,
    ml_key: str,
    gateway_server: str,
    ctx: GatewayContext,
) -> None:
    held = HeldInLabelStudio()
    with backend(tmp_path, sources, gateway_server, ml_key, annotations=held) as http_client:
        _assist_and_fit(http_client, held, released, ctx, ml_key)


def _assist_and_fit(
    http_client: TestClient,
    held: HeldInLabelStudio,
    released: Released,
    ctx: GatewayContext,
    ml_key: str,
) -> None:
    task = released.task(PEOPLE, 31)
    gesture = {
        "type": "rectanglelabels",
        "from_name": "box",
        "to_name": "image",
        "original_width": 400,
        "original_height": 267,
        "value": {"x": 40, "y": 20, "width": 25, "height": 60, "rectanglelabels": ["Person"]},
    }
    body = {
        "tasks": [task],
        "project": "11",
        "label_config": INTERACTIVE,
        "params": {"context": {"result": [gesture]}},
    }
    assisted = http_client.post("/predict", json=body, headers=auth()).json()["results"][0]
    assert sorted(r["type"] for r in assisted[0]["result"]) == ["brushlabels", "polygonlabels"]
    box = {
        "from_name": "box",
        "to_name": "image",
        "type": "rectanglelabels",
        "value": {"x": 40, "y": 20, "width": 25, "height": 60, "rectanglelabels": ["Person"]},
    }
    held.hold(1, task, [box], project=11, config=INTERACTIVE)
    event = {
        "action": "ANNOTATION_CREATED",
        "annotation": {"id": 1, "result": [box], "was_cancelled": False},
        "task": task,
        "project": {"id": 11, "label_config": INTERACTIVE},
    }
    response = http_client.post("/webhook", json=event, headers=auth())
    assert response.status_code == 201 and response.json()["result"]["calibrated"] is True
    key_id = ml_key.split("_")[1]
    for action in ("ml.assisted", "ml.calibrated"):
        (record,) = records(ctx, action)
        assert record["actor"] == {"kind": "api-key", "id": key_id}
        assert record["entity"]["id"] == released.ids[PEOPLE] and record["region"] == "eu-de"
    assert len(records(ctx, SERVED)) == 2  # one fetch per use, each recorded by the gateway
