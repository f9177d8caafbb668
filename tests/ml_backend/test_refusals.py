"""The embedded ML backend refuses a task that names no gateway dataset (no key scope stands
behind it), and every refusal reaches the backend's log with its reason."""

from __future__ import annotations

import logging

import pytest
from fastapi.testclient import TestClient

from gateway.core.context import GatewayContext
from tests.ml_backend.conftest import PLATE, Released
from tests.ml_backend.test_protocol import _records, predict

pytestmark = pytest.mark.db


def test_embedded_backend_refuses_a_task_without_its_dataset(
    client: TestClient, released: Released, ctx: GatewayContext, caplog: pytest.LogCaptureFixture
) -> None:
    task = released.task(PLATE)
    del task["data"]["gateway_dataset_id"]
    with caplog.at_level(logging.WARNING, logger="ml_backend"):
        assert predict(client, [task]).json()["results"] == [[]]
    assert _records(ctx, "ml.predicted") == []
    (line,) = [r.getMessage() for r in caplog.records if "gets no prediction" in r.getMessage()]
    assert "no-gateway-dataset" in line and "gateway_dataset_id" in line


def test_every_refusal_is_logged_with_its_reason(
    client: TestClient, released: Released, caplog: pytest.LogCaptureFixture
) -> None:
    task = released.task(PLATE)
    task["data"]["gateway_dataset_id"] = "another-dataset"
    with caplog.at_level(logging.WARNING, logger="ml_backend"):
        predict(client, [task])
    assert any(
        r.levelno >= logging.WARNING and "dataset-mismatch" in r.getMessage()
        for r in caplog.records
    )
