"""Health per role and the metrics page: an API-only process is ready when its database and
storage answer; a process running workers also needs its loops; /metrics counts what ran."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from gateway.core.models import Role
from gateway.main import create_app
from gateway.pipeline import NotBuiltRedactor
from tests.gateway.bad_inputs import good_jpeg
from tests.gateway.faults import wait_for
from tests.gateway.test_api import auth, make_key

pytestmark = [pytest.mark.db, pytest.mark.timeout(60)]


def _upload(client: TestClient, token: str, dataset: str, seed: int) -> str:
    r = client.post(
        f"/v1/datasets/{dataset}/assets",
        headers=auth(token),
        files=[("files", ("a.jpg", good_jpeg(seed), "image/jpeg"))],
    )
    assert r.status_code == 201, r.text
    return str(r.json()["results"][0]["asset_id"])


def test_an_api_process_is_ready_on_database_and_storage_and_runs_no_jobs(
    ctx, settings, dataset
) -> None:
    api = settings.model_copy(update={"role": "api"})
    with TestClient(create_app(api, ctx=ctx, redactor_factory=NotBuiltRedactor)) as client:
        assert client.get("/health").json() == {"status": "ok"}
        assert client.get("/health/live").json() == {"status": "ok"}
        ready = client.get("/health/ready")
        assert ready.status_code == 200
        assert ready.json() == {
            "status": "ready",
            "role": "api",
            "checks": {"database": "ok", "storage": "ok"},
            "advisory": {},
        }
        token = make_key(ctx, Role.INGEST)
        asset_id = _upload(client, token, dataset.name, 1)
        assert client.get(f"/v1/assets/{asset_id}", headers=auth(token)).json()["state"] == (
            "received"  # a worker process will take it
        )
        metrics = client.get("/metrics").text
        assert 'gateway_queue_depth{state="queued"} 1.0' in metrics


def test_a_worker_process_reports_its_loops_and_counts_outcomes(ctx, settings, dataset) -> None:
    with TestClient(create_app(settings, ctx=ctx, redactor_factory=NotBuiltRedactor)) as client:
        ready = client.get("/health/ready", headers={"X-Request-ID": "probe-1"})
        assert ready.status_code == 200 and ready.headers["x-request-id"] == "probe-1"
        assert ready.json()["checks"]["gateway-worker-0"] == "ok"
        token = make_key(ctx, Role.INGEST)
        asset_id = _upload(client, token, dataset.name, 2)

        def quarantined() -> bool:
            r = client.get(f"/v1/assets/{asset_id}", headers=auth(token))
            return bool(r.json()["state"] == "quarantined")

        wait_for(quarantined, what="the not-built step to quarantine the upload")
        metrics = client.get("/metrics").text
        assert 'gateway_quarantines_total{reason="step-not-built"}' in metrics
        assert 'gateway_queue_depth{state="done"} 1.0' in metrics
        assert "gateway_queue_oldest_age_seconds 0.0" in metrics
        assert 'gateway_background_loop_failures{loop="gateway-worker-0"} 0.0' in metrics
        assert "gateway_ready 1.0" in metrics and "gateway_database_up 1.0" in metrics
    assert "gateway-worker-0" in {s.name for s in client.app.state.supervisor.health()}
    assert not any(s.running for s in client.app.state.supervisor.health())
