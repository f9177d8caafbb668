"""`POST .../review/pull` with a broker: the API process does not pull (a release re-renders
from the original, which only the worker of the dataset's region may open); it sends one
review-pull task to that region's queue on the real RabbitMQ and answers 202 with where it
went. Without a review destination: 404 before anything is sent; a dataset no worker region
may process: 409. (A worker taking the task: tests/scaleout/test_scheduler_custody.py.)"""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from kombu import Connection

from gateway.db import transaction
from gateway.labelstudio.destinations import DestinationSecrets, seal_secrets
from gateway.main import create_app
from gateway.models import Destination
from gateway.pipeline import NotBuiltRedactor
from gateway.review.models import ReviewProject
from gateway.scaleout.periodic import REVIEW_PULL_TASK, run_review_pull_task
from gateway.scaleout.tasks import WorkerRuntime
from gateway.vocabulary import Role
from tests.gateway.test_api import auth, make_key
from tests.gateway.test_jobs import Releases
from tests.policy.helpers import bind, policy_doc
from tests.scaleout.helpers import BROKER_URL, delete_queues, queue_depth, with_broker

pytestmark = [pytest.mark.db, pytest.mark.timeout(60)]
US_ONLY = {
    "origin": "us",
    "processing_regions": ["US"],
    "storage_regions": ["US"],
    "annotation_regions": ["US"],
}


def review_destination(ctx: Any, dataset: Any, *, url: str = "http://127.0.0.1:9") -> None:
    """A review project row on a destination whose token is sealed as the gateway seals it
    (no Label Studio is asked: a pull with no open review item sends no request)."""
    destination_id = f"dest-review-{dataset.id[:8]}"
    with transaction(ctx.engine) as s:
        s.add(
            Destination(
                id=destination_id,
                name=f"review-{dataset.id[:8]}",
                url=url,
                region="eu-de",
                token_sealed=seal_secrets(ctx, destination_id, DestinationSecrets("t", "w")),
                master_key_id=ctx.keys.master.key_id,
                allow_local_addresses=True,
                created_at=ctx.clock(),
            )
        )
        s.flush()
        s.add(
            ReviewProject(
                dataset_id=dataset.id,
                destination_id=destination_id,
                marker="m",
                created_at=ctx.clock(),
            )
        )


def _take(queue: str) -> tuple[dict[str, Any], list[Any]]:
    """The one message waiting in `queue`: its Celery headers and its args."""
    with Connection(BROKER_URL) as conn, conn.channel() as channel:
        raw = channel.basic_get(queue, no_ack=True)
        assert raw is not None, f"nothing in {queue}"
        message = channel.message_to_python(raw)
        args, _kwargs, _embed = message.decode()
        return dict(message.headers), list(args)


@pytest.fixture
def brokered(ctx):
    ctx.settings = with_broker(ctx.settings, worker_regions="eu-de,us-east")
    yield ctx
    delete_queues(ctx.settings.broker_queue_prefix)


def _post(ctx, dataset_id: str) -> Any:
    token = make_key(ctx, Role.ADMIN)
    app = create_app(ctx.settings, ctx=ctx, redactor_factory=NotBuiltRedactor)
    with TestClient(app) as client:
        return client.post(f"/v1/datasets/{dataset_id}/review/pull", headers=auth(token))


def test_with_a_broker_the_pull_is_sent_to_the_datasets_region_queue(brokered, dataset) -> None:
    ctx = brokered
    prefix = ctx.settings.broker_queue_prefix
    review_destination(ctx, dataset)
    answer = _post(ctx, dataset.id)
    assert answer.status_code == 202, answer.text
    body = answer.json()
    queue = f"{prefix}redact.eu-de"  # the eea dataset's region
    assert body == {
        "state": "dispatched",
        "dataset_id": dataset.id,
        "region": "eu-de",
        "queue": queue,
        "task_id": body["task_id"],
    }
    assert queue_depth(f"{prefix}redact.us-east") == 0
    headers, args = _take(queue)
    assert headers["task"] == REVIEW_PULL_TASK
    assert headers["id"] == body["task_id"]
    assert args == ["eu-de", dataset.id]  # the region (checked again by the worker) and dataset


def test_a_us_dataset_goes_to_the_us_queue(brokered, dataset) -> None:
    ctx = brokered
    bind(ctx, dataset, policy_doc(residency=US_ONLY))
    review_destination(ctx, dataset)
    answer = _post(ctx, dataset.id)
    assert answer.status_code == 202, answer.text
    assert answer.json()["region"] == "us-east"
    _headers, args = _take(f"{ctx.settings.broker_queue_prefix}redact.us-east")
    assert args == ["us-east", dataset.id]


def test_no_review_destination_is_404_and_sends_nothing(brokered, dataset) -> None:
    ctx = brokered
    answer = _post(ctx, dataset.id)
    assert answer.status_code == 404, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    prefix = ctx.settings.broker_queue_prefix
    assert queue_depth(f"{prefix}redact.eu-de") == queue_depth(f"{prefix}redact.us-east") == 0


def test_a_dataset_no_worker_region_may_process_is_409(brokered, dataset) -> None:
    ctx = brokered
    ctx.settings = ctx.settings.model_copy(update={"worker_regions": "us-east"})  # eea: none
    review_destination(ctx, dataset)
    answer = _post(ctx, dataset.id)
    assert answer.status_code == 409, answer.text
    assert "no worker region" in answer.json()["detail"]
    assert queue_depth(f"{ctx.settings.broker_queue_prefix}redact.us-east") == 0


def test_the_worker_runs_one_datasets_pull_only_in_its_region(brokered, dataset) -> None:
    """What the worker does with the task (in process here): a pull for another region, or of a
    dataset routed elsewhere, is refused; in its region it pulls (no open item: none decided)."""
    ctx = brokered
    review_destination(ctx, dataset)
    eu = WorkerRuntime(ctx, "eu-de", Releases(), "host:1:eu-de")
    us = WorkerRuntime(ctx, "us-east", Releases(), "host:1:us-east")
    assert run_review_pull_task(us, "eu-de", dataset.id) == "refused-region"
    assert run_review_pull_task(us, "us-east", dataset.id) == "refused-region"  # eea dataset
    assert run_review_pull_task(eu, "eu-de", dataset.id) == "decided-0"


def test_without_a_broker_the_route_pulls_in_process(ctx, dataset) -> None:
    review_destination(ctx, dataset)
    answer = _post(ctx, dataset.id)
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"decided": {}, "ignored": [], "refused": {}, "resynced": []}
