"""With a broker, the review pull's API route does not pull: a release re-renders from the
original, which only the worker of the dataset's region may open (the scheduler sends that
worker the pull), so the API process answers 409 and changes nothing."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from gateway.main import create_app
from gateway.vocabulary import Role
from tests.gateway.test_api import auth, make_key
from tests.scaleout.helpers import delete_queues, with_broker

pytestmark = pytest.mark.db


def test_the_review_pull_route_leaves_it_to_the_region_worker_with_a_broker(ctx, dataset) -> None:
    ctx.settings = with_broker(ctx.settings)
    token = make_key(ctx, Role.ADMIN)
    try:
        with TestClient(create_app(ctx.settings, ctx=ctx)) as client:
            answer = client.post(f"/v1/datasets/{dataset.id}/review/pull", headers=auth(token))
    finally:
        delete_queues(ctx.settings.broker_queue_prefix)
    assert answer.status_code == 409, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    assert "worker of the dataset's region" in answer.json()["detail"]
