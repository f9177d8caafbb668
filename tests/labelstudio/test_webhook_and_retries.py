"""The webhook refuses a wrong secret and malformed bodies with typed problems; transient
Label Studio failures are retried with backoff, then reported as a typed error, and a sync
against a server that is down records nothing as synced."""

from __future__ import annotations

import httpx
import pytest
from sqlmodel import select

from gateway.core.db import transaction
from gateway.core.models import AssetSync, Destination, SyncState
from gateway.labelstudio.client import LabelStudioClient, RetryPolicy
from gateway.labelstudio.errors import LabelStudioUnavailable
from gateway.labelstudio.server import free_port
from gateway.labelstudio.sync import sync_dataset
from gateway.labelstudio.tables import Annotation
from gateway.outbound import AddressPolicy
from tests.labelstudio.fixtures import ADMIN


def test_webhook_needs_the_secret_and_a_well_formed_body(ctx, destination, gateway_server):
    url = f"{gateway_server}/v1/webhooks/labelstudio/{destination.id}"
    body = {
        "action": "ANNOTATION_CREATED",
        "annotation": {"id": 1, "result": []},
        "task": {"id": 1},
    }
    missing = httpx.post(url, json=body)
    wrong = httpx.post(url, json=body, headers={"X-Gateway-Webhook-Secret": "nope"})
    assert (missing.status_code, wrong.status_code) == (401, 401)
    assert wrong.headers["content-type"] == "application/problem+json"
    assert wrong.json()["code"] == "webhook-unauthorised"
    from gateway.labelstudio.destinations import open_secrets

    secret = open_secrets(ctx, destination).webhook_secret
    headers = {"X-Gateway-Webhook-Secret": secret}
    malformed = httpx.post(
        url, json={"action": "ANNOTATIONS_DELETED", "annotations": "x"}, headers=headers
    )
    assert malformed.status_code == 422 and malformed.json()["code"] == "invalid-request"
    unknown_task = httpx.post(url, json=body, headers=headers)
    assert unknown_task.status_code == 200  # not a task of ours: nothing is stored
    nope = f"{gateway_server}/v1/webhooks/labelstudio/nope"
    assert httpx.post(nope, json=body).status_code == 401  # no secret header: refused unread
    assert httpx.post(nope, json=body, headers=headers).status_code == 404
    with transaction(ctx.engine) as s:
        assert s.exec(select(Annotation)).all() == []


def test_transient_failures_are_retried_with_backoff_then_reported() -> None:
    waits: list[float] = []
    retry = RetryPolicy(attempts=4, first_delay=0.01, factor=3.0, sleep=waits.append)
    client = LabelStudioClient(
        f"http://127.0.0.1:{free_port()}", "token", policy=AddressPolicy(True), retry=retry
    )
    try:
        with pytest.raises(LabelStudioUnavailable) as failed:
            client.health()
    finally:
        client.close()
    assert waits == pytest.approx([0.01, 0.03, 0.09])
    assert "token" not in str(failed.value.problem())


def test_sync_to_a_server_that_is_down_records_nothing_as_synced(
    ctx, dataset, released, destination
) -> None:
    with transaction(ctx.engine) as s:
        row = s.get(Destination, destination.id)
        row.url = f"http://127.0.0.1:{free_port()}"  # Label Studio went away
        s.add(row)
    waits: list[float] = []
    with pytest.raises(LabelStudioUnavailable):
        sync_dataset(
            ctx,
            dataset_ref=dataset.name,
            destination_ref=destination.name,
            actor=ADMIN,
            retry=RetryPolicy(attempts=2, first_delay=0.01, sleep=waits.append),
        )
    assert waits == [0.01]
    with transaction(ctx.engine) as s:
        states = {r.state for r in s.exec(select(AssetSync)).all()}
    assert SyncState.SYNCED not in states
