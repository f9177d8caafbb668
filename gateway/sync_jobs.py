"""A dataset's sync to a Label Studio destination as a job (`POST .../sync?background=true`).

The job row (kind `sync`, no asset, the dataset, destination and caller in its payload) is
committed by the API and run by whatever runs jobs: a Celery worker of the first worker
region with a broker (the relay routes and re-sends it like a redaction job), else the
embedded job workers. It has the redaction job's life cycle: a lease kept by a heartbeat,
every write fenced by the attempt number, retries with back-off for an outage or a Label
Studio that is away, `failed` with its reason once attempts run out or at once for a refusal
(residency, a missing destination). A sync is idempotent (tasks already sent are recognised),
so an attempt re-run after a worker died sends nothing twice. The report is kept in the
payload when it is done.
"""

from __future__ import annotations

import logging
import random
from datetime import timedelta
from typing import Any

from sqlalchemy import update
from sqlmodel import Session, col

from gateway.core.context import GatewayContext
from gateway.core.db import transaction
from gateway.core.errors import GatewayError, NotFound
from gateway.core.models import Job, JobState
from gateway.jobs import SYNC_KIND, Heartbeat, claim_next, exhausted, settle, spent
from gateway.labelstudio.destinations import get_destination
from gateway.labelstudio.sync import sync_dataset
from gateway.lineage import Actor
from gateway.pipeline import job_timing

log = logging.getLogger(__name__)
_RNG = random.Random()  # noqa: S311 (back-off jitter, not a secret)


def enqueue_sync(
    ctx: GatewayContext, session: Session, *, dataset_id: str, destination_ref: str, actor: Actor
) -> Job:
    """The sync job of `dataset_id` to `destination_ref` (which must exist now)."""
    destination = get_destination(session, destination_ref)
    now = ctx.clock()
    job = Job(
        kind=SYNC_KIND,
        asset_id=None,
        state=JobState.QUEUED,
        max_attempts=ctx.settings.job_max_attempts,
        payload={
            "dataset_id": dataset_id,
            "destination": destination.name,
            "actor": {"kind": actor.kind, "id": actor.id},
        },
        created_at=now,
        updated_at=now,
    )
    session.add(job)
    session.flush()
    return job


def sync_job(session: Session, job_id: int, *, dataset_id: str) -> Job:
    """Job `job_id` if it is a sync of `dataset_id` (else NotFound: no other job is shown)."""
    job = session.get(Job, job_id)
    if job is None or job.kind != SYNC_KIND or (job.payload or {}).get("dataset_id") != dataset_id:
        raise NotFound(f"no sync job {job_id} of this dataset", job_id=job_id)
    return job


def sync_job_view(job: Job) -> dict[str, Any]:
    payload = job.payload or {}
    return {
        "job_id": job.id,
        "state": JobState(job.state).value,
        "destination": payload.get("destination", ""),
        "attempts": job.attempts,
        "error_code": job.error_code,
        "error": job.error,
        "report": payload.get("report"),
    }


def run_sync_job(ctx: GatewayContext, *, worker: str, job_id: int | None = None) -> str | None:
    """Claim a due sync job (or job `job_id`) and run it; what happened, None if none was due."""
    job = claim_dataset_job(ctx, worker=worker, job_id=job_id, kind=SYNC_KIND)
    if job is None or isinstance(job, str):
        return job
    payload = dict(job.payload or {})
    actor = Actor(str(payload["actor"]["kind"]), str(payload["actor"]["id"]))
    try:
        with Heartbeat(ctx.engine, job, clock=ctx.clock, timing=job_timing(ctx)):
            report = sync_dataset(
                ctx,
                dataset_ref=str(payload["dataset_id"]),
                destination_ref=str(payload["destination"]),
                actor=actor,
            )
    except GatewayError as exc:
        return fail_dataset_job(ctx, job, exc.code, exc.message, final=exc.status < 500)
    except Exception as exc:  # a bug or a dropped connection: retried, bounded by attempts
        log.exception("sync job failed", extra={"job_id": job.id})
        return fail_dataset_job(ctx, job, "internal-error", type(exc).__name__, final=False)
    with transaction(ctx.engine) as session:
        if not settle(session, job, state=JobState.DONE, now=ctx.clock()):
            return "overtaken"
        session.execute(  # still this attempt's row (the fence above locked it)
            update(Job)
            .where(col(Job.id) == job.id, col(Job.attempts) == job.attempts)
            .values(payload={**payload, "report": report.view()})
        )
    return "done"


def claim_dataset_job(
    ctx: GatewayContext, *, worker: str, job_id: int | None, kind: str
) -> Job | str | None:
    """The claimed job of `kind` (detached), "failed" if it was past its attempts, None if
    none was due (the sync job's, and the review pull's: `gateway.review.pull_jobs`)."""
    now = ctx.clock()
    with transaction(ctx.engine) as session:
        job = claim_next(
            session,
            worker=worker,
            now=now,
            lease_seconds=job_timing(ctx).lease_seconds,
            job_id=job_id,
            kind=kind,
        )
        if job is None:
            return None
        if exhausted(job):
            settle(session, job, state=JobState.FAILED, now=now, code="attempts-exhausted")
            return "failed"
        session.expunge(job)
    return job


def fail_dataset_job(ctx: GatewayContext, job: Job, code: str, message: str, *, final: bool) -> str:
    """A refusal (a 4xx: residency, a missing destination) fails at once; anything else is
    retried after a back-off until the attempts run out."""
    now = ctx.clock()
    give_up = final or spent(job) >= job.max_attempts
    with transaction(ctx.engine) as session:
        if give_up:
            settle(session, job, state=JobState.FAILED, now=now, code=code, message=message)
            return "failed"
        delay = job_timing(ctx).retry_delay(spent(job), _RNG)
        settle(
            session,
            job,
            state=JobState.QUEUED,
            now=now,
            code=code,
            message=message,
            run_after=now + timedelta(seconds=delay),
        )
    return "retry"
