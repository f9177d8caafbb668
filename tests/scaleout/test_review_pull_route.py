"""`POST .../review/pull` with a broker: the API process does not pull (a release re-renders
from the original, which only the worker of the dataset's region may open); it commits a
review-pull job, answers 202 with it, and its dispatcher hands the job to that region's queue
on the real RabbitMQ; the caller polls `GET .../review/pull/{job_id}`. Without a review
destination: 404 before anything is queued; a dataset no worker region may process: 409.
(A worker process taking it: tests/scaleout/test_scheduler_custody.py.)"""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from kombu import Connection
from sqlmodel import select

from gateway.core.db import transaction
from gateway.core.models import Destination, Job
from gateway.labelstudio.destinations import DestinationSecrets, seal_secrets
from gateway.main import create_app
from gateway.pipeline import NotBuiltRedactor
from gateway.review.models import ReviewProject
from gateway.scaleout.broker import REDACT_TASK
from gateway.scaleout.tasks import WorkerRuntime, run_woken_job
from gateway.vocabulary import Role
from tests.gateway.test_api import auth, make_key
from tests.gateway.test_jobs import Releases
from tests.policy.helpers import bind, policy_doc
from tests.scaleout.helpers import BROKER_URL, delete_queues, queue_depth, wait_for, with_broker

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


def _client(ctx) -> TestClient:
    return TestClient(create_app(ctx.settings, ctx=ctx, redactor_factory=NotBuiltRedactor))


def _post_and_poll(ctx, dataset_id: str, queue: str | None) -> tuple[Any, list[Any]]:
    """POST the pull; with a `queue`, wait for the API's dispatcher to hand the job there
    and GET the job's view after; the answers."""
    token = make_key(ctx, Role.ADMIN)
    url = f"/v1/datasets/{dataset_id}/review/pull"
    with _client(ctx) as client:
        answers = [client.post(url, headers=auth(token))]
        if queue is not None and answers[0].status_code == 202:
            wait_for(lambda: queue_depth(queue), timeout=30, what=f"a wake-up in {queue}")
            job_id = answers[0].json()["job_id"]
            answers.append(client.get(f"{url}/{job_id}", headers=auth(token)))
    return answers[0], answers[1:]


def test_with_a_broker_the_pull_is_a_job_handed_to_the_datasets_region(brokered, dataset):
    ctx = brokered
    prefix = ctx.settings.broker_queue_prefix
    review_destination(ctx, dataset)
    queue = f"{prefix}redact.eu-de"  # the eea dataset's region
    answer, [polled] = _post_and_poll(ctx, dataset.id, queue)
    assert answer.status_code == 202, answer.text
    job_id = answer.json()["job_id"]
    assert answer.json() == {
        "job_id": job_id,
        "state": "queued",
        "queue": None,  # not handed over yet when it answered
        "attempts": 0,
        "error_code": None,
        "error": None,
        "report": None,
    }
    assert polled.status_code == 200, polled.text
    assert polled.json()["queue"] == queue and polled.json()["state"] == "queued"
    assert queue_depth(f"{prefix}redact.us-east") == 0
    headers, args = _take(queue)
    assert headers["task"] == REDACT_TASK  # a wake-up naming the job id, nothing more
    assert args == [job_id]

    us = WorkerRuntime(ctx, "us-east", Releases(), "host:1:us-east")
    assert run_woken_job(us, job_id) == "refused-region"  # not its dataset: left alone
    eu = WorkerRuntime(ctx, "eu-de", Releases(), "host:1:eu-de")
    assert run_woken_job(eu, job_id) == "done"  # no open review item: nothing decided
    assert run_woken_job(eu, job_id) == "already-done"
    token = make_key(ctx, Role.ADMIN)
    with _client(ctx) as client:
        done = client.get(f"/v1/datasets/{dataset.id}/review/pull/{job_id}", headers=auth(token))
        other = client.get(f"/v1/datasets/{dataset.id}/review/pull/99999", headers=auth(token))
    assert done.json()["state"] == "done" and done.json()["attempts"] == 1
    assert done.json()["report"] == {"decided": {}, "ignored": [], "refused": {}, "resynced": []}
    assert other.status_code == 404


def test_a_us_dataset_goes_to_the_us_queue(brokered, dataset) -> None:
    ctx = brokered
    bind(ctx, dataset, policy_doc(residency=US_ONLY))
    review_destination(ctx, dataset)
    queue = f"{ctx.settings.broker_queue_prefix}redact.us-east"
    answer, [polled] = _post_and_poll(ctx, dataset.id, queue)
    assert answer.status_code == 202, answer.text
    assert polled.json()["queue"] == queue
    _headers, args = _take(queue)
    assert args == [answer.json()["job_id"]]


def test_no_review_destination_is_404_and_queues_nothing(brokered, dataset) -> None:
    ctx = brokered
    answer, _ = _post_and_poll(ctx, dataset.id, None)
    assert answer.status_code == 404, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    with transaction(ctx.engine) as s:
        assert s.exec(select(Job)).all() == []


def test_a_dataset_no_worker_region_may_process_is_409(brokered, dataset) -> None:
    ctx = brokered
    ctx.settings = ctx.settings.model_copy(update={"worker_regions": "us-east"})  # eea: none
    review_destination(ctx, dataset)
    answer, _ = _post_and_poll(ctx, dataset.id, None)
    assert answer.status_code == 409, answer.text
    assert "no worker region" in answer.json()["detail"]
    with transaction(ctx.engine) as s:
        assert s.exec(select(Job)).all() == []


def test_without_a_broker_the_route_pulls_in_process(ctx, dataset) -> None:
    review_destination(ctx, dataset)
    answer, _ = _post_and_poll(ctx, dataset.id, None)
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"decided": {}, "ignored": [], "refused": {}, "resynced": []}
    with transaction(ctx.engine) as s:
        assert s.exec(select(Job)).all() == []
