"""The task a woken worker runs, in process: idempotent by job id."""

from __future__ import annotations

import pytest
from sqlmodel import select

from gateway.core.db import transaction
from gateway.core.models import Job, JobState
from gateway.scaleout.tasks import WorkerRuntime, run_woken_job
from tests.gateway.test_jobs import Releases, ingest
from tests.policy.helpers import lineage

pytestmark = [pytest.mark.db, pytest.mark.timeout(60)]


def test_a_duplicate_or_stale_wake_up_changes_nothing(ctx, dataset):
    asset_id = ingest(ctx, dataset)
    redactor = Releases()
    rt = WorkerRuntime(ctx, "eu-de", redactor, "host:1:eu-de")
    with transaction(ctx.engine) as s:
        [job] = s.exec(select(Job)).all()
    assert run_woken_job(rt, job.id) == "released"
    assert run_woken_job(rt, job.id) == "already-done"  # the broker delivered it twice
    assert run_woken_job(rt, 10_000) == "missing"  # a wake-up for a job that is not there
    assert redactor.calls == 1
    with transaction(ctx.engine) as s:
        done = s.get(Job, job.id)
    assert done.state == JobState.DONE and done.attempts == 1
    assert [r["entity"]["id"] for r in lineage(ctx, "asset.released")] == [asset_id]


def test_the_scheduler_sends_retention_and_reconcile_and_runs_neither(ctx) -> None:
    """With a broker, retention, the reconcile and the review pull are tasks for the workers:
    the scheduler's loops are the checkpointer, the relay and three senders (one retention run
    and one review pull per region)."""
    from gateway.scaleout.periodic import (
        RECONCILE_TASK,
        RETENTION_TASK,
        REVIEW_PULL_TASK,
        dispatch_loops,
    )
    from gateway.scaleout.worker import scheduler_supervisor
    from tests.scaleout.helpers import delete_queues, with_broker

    settings = with_broker(ctx.settings, worker_regions="eu-de,us-east")
    try:
        loops = [loop.name for loop in scheduler_supervisor(ctx, settings).loops]
        assert sorted(loops) == sorted(
            [
                "lineage-checkpointer",
                "retention-dispatch",
                "reconcile-dispatch",
                "review-pull-dispatch",
                "broker-relay",
            ]
        )
        sent: list[tuple[str, list[str], str, float]] = []
        for loop in dispatch_loops(settings, lambda *a: sent.append(a)):
            loop.fn()
        prefix = settings.broker_queue_prefix
        assert sorted(sent) == sorted(
            [
                (RETENTION_TASK, ["eu-de"], f"{prefix}redact.eu-de", 3600.0),
                (RETENTION_TASK, ["us-east"], f"{prefix}redact.us-east", 3600.0),
                (RECONCILE_TASK, ["eu-de"], f"{prefix}redact.eu-de", 900.0),
                (REVIEW_PULL_TASK, ["eu-de"], f"{prefix}redact.eu-de", 60.0),
                (REVIEW_PULL_TASK, ["us-east"], f"{prefix}redact.us-east", 60.0),
            ]
        )
    finally:
        delete_queues(settings.broker_queue_prefix)


def test_a_review_pull_runs_only_on_its_regions_worker(ctx, dataset) -> None:
    """A review pull sent to another region's queue is refused; on its own region's worker it
    pulls the datasets routed there (none have a review project here: nothing decided)."""
    from gateway.scaleout.periodic import run_review_pull_task

    rt = WorkerRuntime(ctx, "eu-de", Releases(), "host:1:eu-de")
    assert run_review_pull_task(rt, "us-east") == "refused-region"
    assert run_review_pull_task(rt, "eu-de") == "decided-0"


def test_a_sync_job_is_routed_by_its_dataset_and_fails_closed_on_a_worker(ctx, dataset):
    """A sync job woken on a worker runs there (the job model's claim and fencing); a
    destination that no longer exists fails it at once with its reason, no retry."""
    from gateway.jobs import SYNC_KIND
    from gateway.scaleout.routing import queue_for

    now = ctx.clock()
    with transaction(ctx.engine) as s:
        job = Job(
            kind=SYNC_KIND,
            state=JobState.QUEUED,
            payload={
                "dataset_id": dataset.id,
                "destination": "removed-since",
                "actor": {"kind": "cli", "id": "t"},
            },
            created_at=now,
            updated_at=now,
        )
        s.add(job)
        s.flush()
        assert queue_for(ctx, s, job) == "redact.eu-de"  # the dataset's region (eea policy)
        job_id = job.id
    rt = WorkerRuntime(ctx, "eu-de", Releases(), "host:1:eu-de")
    assert run_woken_job(rt, job_id) == "failed"
    assert run_woken_job(rt, job_id) == "already-failed"
    with transaction(ctx.engine) as s:
        failed = s.get(Job, job_id)
    assert failed.attempts == 1 and failed.error_code == "not-found", failed.error_code


def test_the_relay_sends_a_sync_job_to_its_datasets_region_queue(ctx, dataset):
    """With a broker, a background sync reaches a worker as a redaction job does: routed by
    its dataset, published once, the wake-up naming only the job id."""
    from gateway.jobs import SYNC_KIND
    from gateway.scaleout.broker import celery_app
    from gateway.scaleout.relay import CeleryPublisher, dispatch
    from tests.scaleout.helpers import delete_queues, queue_depth, with_broker

    ctx.settings = with_broker(ctx.settings, worker_regions="us-east,eu-de")
    prefix = ctx.settings.broker_queue_prefix
    now = ctx.clock()
    try:
        with transaction(ctx.engine) as s:
            s.add(
                Job(
                    kind=SYNC_KIND,
                    state=JobState.QUEUED,
                    payload={"dataset_id": dataset.id, "destination": "d", "actor": {}},
                    created_at=now,
                    updated_at=now,
                )
            )
        publisher = CeleryPublisher(celery_app(ctx.settings))
        assert dispatch(ctx, publisher) == 1
        assert dispatch(ctx, publisher) == 0  # published: not sent again
        with transaction(ctx.engine) as s:
            [job] = s.exec(select(Job)).all()
        assert job.queue == f"{prefix}redact.eu-de"  # the eea dataset skips us-east
        assert queue_depth(f"{prefix}redact.eu-de") == 1
    finally:
        delete_queues(prefix)
