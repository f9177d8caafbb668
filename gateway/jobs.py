"""The job table's life cycle, for any kind of job: claim with a lease, heartbeat, settle.

A claim adds one to `attempts`; that number then fences every later write for the job
(`UPDATE ... WHERE id = ? AND attempts = ? AND state = 'running'`), so a worker that lost its
lease (it stalled, the service was killed and restarted, the lease ran out) can no longer
overwrite what a newer attempt did. A running job's heartbeat extends its lease every few
seconds: a dead worker's job is taken again within about a lease, a slow one never.

Dataset-scoped jobs (a sync, a review pull: no asset, the dataset and the caller in the
payload) share their queueing, look-up, claim, retry and report here; each kind brings only
its work (`gateway.sync_jobs`, `gateway.review.pull_jobs`).
"""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from types import TracebackType
from typing import Literal

from sqlalchemy import Engine, and_, func, or_, update
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlmodel import Session, col, select

from gateway.core.clock import Clock
from gateway.core.context import GatewayContext
from gateway.core.models import Job, JobState

log = logging.getLogger(__name__)
RNG = random.Random()  # noqa: S311 (back-off jitter, not a secret)
REDACT_KIND = "redact"  # one asset's redaction
SYNC_KIND = "sync"  # one dataset's sync to a destination (`gateway.sync_jobs`)
REVIEW_PULL_KIND = "review-pull"  # one dataset's review pull (`gateway.review.pull_jobs`)
ATTEMPTS_EXHAUSTED = "attempts-exhausted"  # the failure of a claim beyond the attempt limit


@dataclass(frozen=True)
class JobTiming:
    lease_seconds: float = 15.0
    heartbeat_seconds: float = 2.0
    retry_base_seconds: float = 1.0
    retry_cap_seconds: float = 60.0

    def retry_delay(self, attempt: int, rng: random.Random) -> float:
        """Bounded exponential back-off with jitter before attempt `attempt + 1`."""
        full = min(self.retry_cap_seconds, self.retry_base_seconds * 2.0 ** max(0, attempt - 1))
        return full * (0.5 + 0.5 * rng.random())


def job_timing(ctx: GatewayContext) -> JobTiming:
    settings = ctx.settings
    return JobTiming(
        lease_seconds=settings.job_lease_seconds,
        heartbeat_seconds=settings.job_heartbeat_seconds,
    )


def queue_redaction(ctx: GatewayContext, session: Session, asset_id: str, *, now: datetime) -> Job:
    """Queue asset `asset_id`'s redaction (an upload, a policy change, a review's re-render)."""
    job = Job(
        kind=REDACT_KIND,
        asset_id=asset_id,
        state=JobState.QUEUED,
        max_attempts=ctx.settings.job_max_attempts,
        created_at=now,
        updated_at=now,
    )
    session.add(job)
    return job


def claim_next(
    session: Session,
    *,
    worker: str,
    now: datetime,
    lease_seconds: float,
    queue: str | None = None,
    job_id: int | None = None,
    kind: str | None = None,
) -> Job | None:
    """Take the oldest due job (queued, or running with an expired lease), locking its row;
    with `job_id`, that job only (a broker's wake-up names it), if it is due; with `kind`,
    only a job of that kind."""
    due = or_(col(Job.run_after).is_(None), col(Job.run_after) <= now)
    orphaned = or_(col(Job.lease_expires_at).is_(None), col(Job.lease_expires_at) < now)
    stmt = select(Job).where(
        or_(
            and_(col(Job.state) == JobState.QUEUED, due),
            and_(col(Job.state) == JobState.RUNNING, orphaned),
        )
    )
    if queue is not None:
        stmt = stmt.where(col(Job.queue) == queue)
    if job_id is not None:
        stmt = stmt.where(col(Job.id) == job_id)
    if kind is not None:
        stmt = stmt.where(col(Job.kind) == kind)
    job = session.exec(
        stmt.order_by(col(Job.id)).limit(1).with_for_update(skip_locked=True)
    ).first()
    if job is None:
        return None
    if job.state == JobState.RUNNING:
        log.warning(
            "job lease expired; taking it again",
            extra={"job_id": job.id, "attempt": job.attempts, "previous_worker": job.worker},
        )
    job.state, job.worker, job.updated_at = JobState.RUNNING, worker[:64], now
    job.attempts += 1
    job.lease_expires_at = now + timedelta(seconds=lease_seconds)
    session.add(job)
    session.flush()
    return job


def claim_or_fail(
    ctx: GatewayContext,
    session: Session,
    *,
    worker: str,
    now: datetime,
    kind: str,
    job_id: int | None = None,
    give_up: Callable[[Session, Job], object] | None = None,
) -> Job | Literal["failed"] | None:
    """`claim_next` with the configured lease, but a claim beyond the job's attempt limit (its
    last worker died with it) fails the job instead: by `give_up` if given (a redaction job
    also quarantines its asset), else with `attempts-exhausted`. The claimed job, "failed", or
    None if none was due."""
    lease_seconds = job_timing(ctx).lease_seconds
    job = claim_next(
        session, worker=worker, now=now, lease_seconds=lease_seconds, job_id=job_id, kind=kind
    )
    if job is None:
        return None
    if not exhausted(job):
        return job
    if give_up is None:
        settle(session, job, state=JobState.FAILED, now=now, code=ATTEMPTS_EXHAUSTED)
    else:
        give_up(session, job)
    return "failed"


MAX_DEFERRALS = 1000
"""Outages a job may wait out (at up to `retry_cap_seconds` each) before it fails."""


def spent(job: Job) -> int:
    """Attempts that count against the limit: claims, less those given back for outages."""
    return job.attempts - job.deferrals


def is_outage(exc: BaseException) -> bool:
    """The database or the disk failed us (not the job): connection lost, disk full, I/O."""
    return isinstance(exc, OSError | OperationalError | InterfaceError)


def exhausted(job: Job) -> bool:
    """The claim just made is beyond the job's attempt limit."""
    return spent(job) > job.max_attempts or job.deferrals > MAX_DEFERRALS


def settle(
    session: Session,
    job: Job,
    *,
    state: JobState,
    now: datetime,
    code: str | None = None,
    message: str | None = None,
    run_after: datetime | None = None,
    deferred: bool = False,
) -> bool:
    """Move a running job on, fenced by its attempt number; False if this attempt is stale.
    `deferred`: the attempt failed for an outage, not for the job, and is given back."""
    finished = now if state in (JobState.DONE, JobState.FAILED) else None
    deferrals = job.deferrals + 1 if deferred else job.deferrals
    result = session.execute(
        update(Job)
        .where(
            col(Job.id) == job.id,
            col(Job.attempts) == job.attempts,
            col(Job.state) == JobState.RUNNING,
        )
        .values(
            state=state,
            updated_at=now,
            error_code=code,
            error=message,
            run_after=run_after,
            lease_expires_at=None,
            finished_at=finished,
            deferrals=deferrals,
        )
    )
    return int(getattr(result, "rowcount", 0)) == 1


def retry_later(
    session: Session,
    job: Job,
    *,
    now: datetime,
    delay: float,
    code: str,
    message: str,
    deferred: bool = False,
) -> bool:
    """Queue the job again in `delay` seconds with this attempt's failure (fenced, as
    `settle`); False if this attempt is stale."""
    return settle(
        session,
        job,
        state=JobState.QUEUED,
        now=now,
        code=code,
        message=message,
        run_after=now + timedelta(seconds=delay),
        deferred=deferred,
    )


def extend_lease(engine: Engine, job: Job, *, now: datetime, lease_seconds: float) -> bool:
    """The heartbeat: push the lease out; False once the job is no longer this attempt's."""
    with Session(engine) as session:
        result = session.execute(
            update(Job)
            .where(
                col(Job.id) == job.id,
                col(Job.attempts) == job.attempts,
                col(Job.state) == JobState.RUNNING,
            )
            .values(lease_expires_at=now + timedelta(seconds=lease_seconds), updated_at=now)
        )
        session.commit()
        return int(getattr(result, "rowcount", 0)) == 1


def next_due(session: Session, *, now: datetime, leases: bool = True) -> float | None:
    """Seconds until a job not due now becomes due (a retry's back-off ends, or, with
    `leases`, a running job's lease runs out); None if no job waits for either."""
    retry = session.exec(
        select(func.min(Job.run_after)).where(
            col(Job.state) == JobState.QUEUED, col(Job.run_after) > now
        )
    ).one()
    lease = (
        session.exec(
            select(func.min(Job.lease_expires_at)).where(col(Job.state) == JobState.RUNNING)
        ).one()
        if leases
        else None
    )
    times = [_aware(t, now) for t in (retry, lease) if t is not None]
    return max(0.0, (min(times) - now).total_seconds()) if times else None


def _aware(moment: datetime, now: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=now.tzinfo)


class Heartbeat:
    """While a job runs: extend its lease every `heartbeat_seconds` on a small thread. A
    failed beat (database away) is logged and tried again; a lost lease stops the beats."""

    def __init__(self, engine: Engine, job: Job, *, clock: Clock, timing: JobTiming) -> None:
        self._engine, self._job, self._clock, self._timing = engine, job, clock, timing
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name=f"heartbeat-{job.id}", daemon=True)
        self.lost = False

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._thread.join()

    def _beat(self) -> None:
        while not self._stop.wait(self._timing.heartbeat_seconds):
            try:
                alive = extend_lease(
                    self._engine,
                    self._job,
                    now=self._clock(),
                    lease_seconds=self._timing.lease_seconds,
                )
            except Exception as exc:  # the database may be away for a while: keep trying
                log.warning("job heartbeat failed: %s", type(exc).__name__)
                continue
            if not alive:
                self.lost = True
                log.warning("job lease lost", extra={"job_id": self._job.id})
                return
