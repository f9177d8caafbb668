"""The outbox relay against the real RabbitMQ: jobs committed with their assets are routed to
a region's queue, published once, and published again when the broker lost them."""

from __future__ import annotations

import pytest
from sqlmodel import select

from gateway.core.db import transaction
from gateway.core.models import Job, JobState
from gateway.scaleout.broker import celery_app
from gateway.scaleout.relay import CeleryPublisher, dispatch
from gateway.scaleout.routing import HELD
from tests.gateway.test_jobs import ingest
from tests.policy.helpers import bind, policy_doc
from tests.scaleout.helpers import delete_queues, purge, queue_depth, with_broker

pytestmark = [pytest.mark.db, pytest.mark.timeout(60)]


@pytest.fixture
def broker_ctx(ctx):
    ctx.settings = with_broker(ctx.settings, worker_regions="us-east,eu-de")
    yield ctx
    delete_queues(ctx.settings.broker_queue_prefix)


def _jobs(ctx) -> list[Job]:
    with transaction(ctx.engine) as s:
        return list(s.exec(select(Job).order_by(Job.id)).all())


def test_a_job_goes_to_the_queue_of_a_region_its_residency_allows_once(broker_ctx, dataset):
    ctx = broker_ctx
    publisher = CeleryPublisher(celery_app(ctx.settings))
    ingest(ctx, dataset, 1)
    ingest(ctx, dataset, 2)
    eu = f"{ctx.settings.broker_queue_prefix}redact.eu-de"
    us = f"{ctx.settings.broker_queue_prefix}redact.us-east"

    # the default policy allows processing in the EEA: us-east comes first but is not allowed
    assert dispatch(ctx, publisher) == 2
    assert [job.queue for job in _jobs(ctx)] == [eu, eu]
    assert all(job.published_at is not None for job in _jobs(ctx))
    assert queue_depth(eu) == 2 and queue_depth(us) == 0
    assert dispatch(ctx, publisher) == 0  # published once: a second pass sends nothing
    assert dispatch(ctx, publisher, lost=True) == 0  # nor the relay, within its window


def test_the_relay_republishes_a_job_the_broker_lost(broker_ctx, dataset, clock):
    ctx = broker_ctx
    publisher = CeleryPublisher(celery_app(ctx.settings))
    ingest(ctx, dataset, 1)
    eu = f"{ctx.settings.broker_queue_prefix}redact.eu-de"
    assert dispatch(ctx, publisher) == 1
    clock.advance(seconds=ctx.settings.relay_republish_seconds + 1)
    assert dispatch(ctx, publisher, lost=True) == 0  # still waiting in the queue: not lost
    purge(eu)  # the broker lost the wake-up (a restart without persistence, a purge)
    assert queue_depth(eu) == 0
    assert dispatch(ctx, publisher, lost=True) == 1
    assert queue_depth(eu) == 1
    clock.advance(seconds=1)  # just republished: not again before the window ends
    assert dispatch(ctx, publisher, lost=True) == 0
    # a queue that never empties does not hide a lost job for ever: re-sent after 10 windows
    clock.advance(seconds=5 * ctx.settings.relay_republish_seconds)
    assert dispatch(ctx, publisher, lost=True) == 0
    clock.advance(seconds=5 * ctx.settings.relay_republish_seconds)
    assert dispatch(ctx, publisher, lost=True) == 1
    assert queue_depth(eu) == 2


def test_a_retry_and_an_expired_lease_are_woken_when_due(broker_ctx, dataset, clock):
    from datetime import timedelta

    from gateway.pipeline import claim_job

    ctx = broker_ctx
    publisher = CeleryPublisher(celery_app(ctx.settings))
    ingest(ctx, dataset, 1)
    eu = f"{ctx.settings.broker_queue_prefix}redact.eu-de"
    dispatch(ctx, publisher)
    purge(eu)
    job = claim_job(ctx, worker="w:1")  # its worker then dies: the lease runs out
    assert job is not None and job.state == JobState.RUNNING
    assert dispatch(ctx, publisher, lost=True) == 0  # the lease is live
    clock.advance(seconds=ctx.settings.job_lease_seconds + 1)
    assert dispatch(ctx, publisher, lost=True) == 1
    with transaction(ctx.engine) as s:  # sent back for a retry a little later
        row = s.get(Job, job.id)
        row.state, row.run_after = JobState.QUEUED, clock.now + timedelta(seconds=5)
        s.add(row)
    assert dispatch(ctx, publisher, lost=True) == 0  # not due yet
    clock.advance(seconds=6)
    assert dispatch(ctx, publisher, lost=True) == 1
    assert queue_depth(eu) == 2


def test_no_worker_region_allowed_holds_the_job_unpublished(broker_ctx, dataset):
    ctx = broker_ctx
    bind(ctx, dataset, policy_doc(residency={"processing_regions": ["FR"]}))
    ctx.settings = ctx.settings.model_copy(update={"region": "eu-fr"})  # ingest runs in France
    ingest(ctx, dataset, 1)
    publisher = CeleryPublisher(celery_app(ctx.settings))
    assert dispatch(ctx, publisher) == 0
    assert [job.queue for job in _jobs(ctx)] == [HELD]


def test_cli_ingest_with_a_broker_queues_for_the_workers_instead_of_redacting(
    broker_ctx, dataset, tmp_path
):
    import subprocess
    import sys

    from tests.gateway.bad_inputs import good_jpeg
    from tests.scaleout.helpers import gateway_env

    ctx = broker_ctx
    folder = tmp_path / "photos"
    folder.mkdir()
    for i in range(2):
        (folder / f"{i}.jpg").write_bytes(good_jpeg(i, size=(120, 160)))
    done = subprocess.run(
        [sys.executable, "-m", "gateway", "ingest", str(folder), "--dataset", dataset.name],
        env=gateway_env(ctx.settings),
        capture_output=True,
        check=False,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr.decode()
    assert "queued for the workers: 2 job(s)" in done.stdout.decode()
    jobs = _jobs(ctx)
    assert [job.state for job in jobs] == [JobState.QUEUED] * 2  # nothing redacted here
    assert queue_depth(f"{ctx.settings.broker_queue_prefix}redact.eu-de") == 2


def test_one_scheduler_holds_the_lock_the_others_stand_by(ctx):
    from gateway.scaleout.singleton import SchedulerLock

    first, second = SchedulerLock(ctx.engine), SchedulerLock(ctx.engine)
    try:
        assert first.try_acquire() and first.held()
        assert not second.try_acquire()  # a second scheduler waits
        first.release()
        assert second.try_acquire() and second.held()  # and takes over when the first goes
        assert not first.try_acquire()
    finally:
        first.release()
        second.release()


def test_an_upload_while_the_broker_is_away_is_kept_and_sent_when_it_is_back(broker_ctx, dataset):
    from pydantic import SecretStr

    ctx = broker_ctx
    away = ctx.settings.model_copy(
        update={"broker_url": SecretStr("amqp://guest:guest@127.0.0.1:9//")}  # nothing listens
    )
    ingest(ctx, dataset, 1)  # the job row is committed with the asset: nothing depends on AMQP
    with pytest.raises(Exception):  # noqa: B017 (kombu's connection error, any kind)
        dispatch(ctx, CeleryPublisher(celery_app(away)))
    [job] = _jobs(ctx)
    assert job.state == JobState.QUEUED and job.published_at is None  # unmarked: sent next pass
    assert dispatch(ctx, CeleryPublisher(celery_app(ctx.settings)), lost=True) == 1
    assert queue_depth(f"{ctx.settings.broker_queue_prefix}redact.eu-de") == 1
