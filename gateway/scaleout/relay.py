"""The outbox relay: job rows (committed with their assets) become broker wake-ups.

A job is first marked published (its queue chosen, `published_at` set, in its own short
transaction), then published. If the process dies between the two, or the broker loses the
message (a restart without persistence, a purged queue, a consumer that acknowledged and
died), the job is still due and unclaimed in the database, and the relay sends it again:

- queued and due, and not published since it became due: never, or before its retry time;
- running with an expired lease (its worker died) and not published since the lease ran out;
- queued, due, published longer ago than `relay_republish_seconds`, and its queue holds no
  ready message (a backlog still being worked through is not a loss: without this guard a
  long queue would be sent again every window); or published more than `STARVED` windows
  ago whatever the queue holds (a queue that never empties must not hide a lost job).

Publishing twice is harmless: a task claims its job by id, under the job's own fencing.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Protocol

from amqp.exceptions import NotFound
from celery import Celery
from sqlalchemy import ColumnElement, and_, or_, update
from sqlmodel import col, select

from gateway.background import Periodic
from gateway.core.context import GatewayContext
from gateway.core.db import transaction
from gateway.core.models import Job, JobState
from gateway.scaleout.broker import REDACT_TASK
from gateway.scaleout.routing import HELD, UNROUTED, Routes, queue_for

log = logging.getLogger(__name__)
BATCH = 200
STARVED = 10  # windows after which a queued job is re-sent even into a busy queue


class Publisher(Protocol):
    def publish(self, job_id: int, *, queue: str) -> None: ...

    def ready(self, queue: str) -> int:
        """Messages waiting in `queue` (0 if it does not exist)."""
        ...


class CeleryPublisher:
    """Sends the redaction task by name (the API needs no task code, only the broker)."""

    def __init__(self, app: Celery) -> None:
        self._app = app

    def publish(self, job_id: int, *, queue: str) -> None:
        self._app.send_task(REDACT_TASK, args=[job_id], queue=queue, routing_key=queue)

    def ready(self, queue: str) -> int:
        with self._app.connection_for_read() as conn, conn.channel() as channel:
            try:
                return int(channel.queue_declare(queue, passive=True).message_count)
            except NotFound:
                return 0


def _new() -> ColumnElement[bool]:
    return and_(col(Job.state) == JobState.QUEUED, col(Job.published_at).is_(None))


def _due(now: datetime) -> ColumnElement[bool]:
    """Queued and due but not published since it became due, or orphaned by a dead worker."""
    queued = and_(
        col(Job.state) == JobState.QUEUED,
        or_(col(Job.run_after).is_(None), col(Job.run_after) <= now),
        or_(col(Job.published_at).is_(None), col(Job.published_at) < col(Job.run_after)),
    )
    orphaned = and_(
        col(Job.state) == JobState.RUNNING,
        col(Job.lease_expires_at) < now,
        or_(
            col(Job.published_at).is_(None),
            col(Job.published_at) < col(Job.lease_expires_at),
        ),
    )
    return or_(queued, orphaned)


def _stale(now: datetime, republish: timedelta) -> ColumnElement[bool]:
    """Queued, due, and published longer ago than the window (lost, or still in a backlog)."""
    return and_(
        col(Job.state) == JobState.QUEUED,
        or_(col(Job.run_after).is_(None), col(Job.run_after) <= now),
        col(Job.published_at) < now - republish,
    )


def dispatch(ctx: GatewayContext, publisher: Publisher, *, lost: bool = False) -> int:
    """Route and publish new jobs (or, with `lost`, every job the broker may have lost);
    returns how many were published. Raises if the broker is away (the loop backs off; the
    jobs stay marked and the relay sends them again after `relay_republish_seconds`)."""
    now = ctx.clock()
    if not lost:
        return _publish(ctx, publisher, _new(), now=now)
    republish = timedelta(seconds=ctx.settings.relay_republish_seconds)
    published = _publish(ctx, publisher, _due(now), now=now)
    published += _publish(ctx, publisher, _stale(now, republish * STARVED), now=now)
    idle = {queue: publisher.ready(queue) == 0 for queue in _queues(ctx, _stale(now, republish))}
    return published + _publish(
        ctx, publisher, _stale(now, republish), now=now, only={q for q, ok in idle.items() if ok}
    )


def _queues(ctx: GatewayContext, where: ColumnElement[bool]) -> list[str]:
    with transaction(ctx.engine) as session:
        return list(session.exec(select(Job.queue).where(where).distinct()).all())


def _publish(
    ctx: GatewayContext,
    publisher: Publisher,
    where: ColumnElement[bool],
    *,
    now: datetime,
    only: set[str] | None = None,
) -> int:
    if only is not None and not only:
        return 0
    stmt = select(Job.id).where(where)
    if only is not None:
        stmt = stmt.where(col(Job.queue).in_(sorted(only)))
    with transaction(ctx.engine) as session:
        ids = session.exec(stmt.order_by(col(Job.id)).limit(BATCH)).all()
    published, seen = 0, Routes()
    for job_id in ids:
        assert job_id is not None  # noqa: S101 (a stored row has its id)
        queue = _mark(ctx, job_id, where, now=now, seen=seen)
        if queue is None or queue == HELD:
            continue
        try:
            publisher.publish(job_id, queue=queue)
        except Exception:  # the broker is away: unmark, so the next pass sends it at once
            _unmark(ctx, job_id, now=now)
            raise
        published += 1
    if published:
        log.info("jobs published", extra={"count": published, "queues": sorted(only or [])})
    return published


def _mark(
    ctx: GatewayContext,
    job_id: int,
    where: ColumnElement[bool],
    *,
    now: datetime,
    seen: Routes,
) -> str | None:
    """Choose the job's queue (once) and mark it published, if it still needs publishing
    (another relay or API process may have just done it); the queue, or None."""
    with transaction(ctx.engine) as session:
        job = session.get(Job, job_id)
        if job is None:
            return None
        queue = job.queue
        if queue in (UNROUTED, HELD):
            queue = queue_for(ctx, session, job, seen=seen)
            if queue == HELD:
                log.warning("no worker region may process this job", extra={"job_id": job_id})
        result = session.execute(
            update(Job)
            .where(col(Job.id) == job_id, where)
            .values(queue=queue, published_at=now)
            .execution_options(synchronize_session=False)
        )
        return queue if int(getattr(result, "rowcount", 0)) == 1 else None


def _unmark(ctx: GatewayContext, job_id: int, *, now: datetime) -> None:
    with transaction(ctx.engine) as session:
        session.execute(
            update(Job)
            .where(col(Job.id) == job_id, col(Job.published_at) == now)
            .values(published_at=None)
            .execution_options(synchronize_session=False)
        )


class Dispatcher:
    """The API's loop with a broker: woken when an upload committed, publishes new jobs.
    It only hands over; the scheduler's relay catches anything it did not."""

    name = "broker-dispatch"
    interval = 3600.0
    first_after_interval = False
    wakeable = True
    critical = False

    def __init__(self, ctx: GatewayContext, publisher: Publisher) -> None:
        self.ctx, self._publisher = ctx, publisher

    def tick(self) -> bool:
        return dispatch(self.ctx, self._publisher) >= BATCH

    def able(self) -> bool:
        return True

    def close(self) -> None:
        return None


def relay_loop(ctx: GatewayContext, publisher: Publisher) -> Periodic:
    """The scheduler's relay: jobs the broker lost, and new ones nobody dispatched."""

    def once() -> None:
        dispatch(ctx, publisher, lost=True)

    return Periodic(
        "broker-relay",
        ctx.settings.relay_interval_seconds,
        once,
        first_after_interval=False,
    )
