"""A dataset's review pull as a job (`POST .../review/pull` when a broker is configured).

With a broker the API process does not pull: a release re-renders from the original, which
only a worker of the dataset's region may open. So the API commits a job row (kind
`review-pull`, no asset, the dataset and caller in its payload) and answers 202 with it; the
relay routes it to the dataset's region queue like the dataset's other jobs (and re-sends it
if the broker loses it), a worker of that region claims and runs it with the job model's
lease, heartbeat, fencing and attempts, and keeps the report in the payload, which the caller
polls (`GET .../review/pull/{job_id}`). Pulls are safe to repeat: each decision claims its
review item once (`gateway.review.decide`).
"""

from __future__ import annotations

import logging
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from sqlalchemy import update
from sqlmodel import Session, col

from gateway.core.context import GatewayContext
from gateway.core.db import transaction
from gateway.core.errors import GatewayError, NotFound
from gateway.core.models import Job, JobState
from gateway.jobs import REVIEW_PULL_KIND, Heartbeat, settle
from gateway.lineage import Actor
from gateway.pipeline import job_timing
from gateway.review.decide import pull_decisions
from gateway.review.queue import review_project
from gateway.sync_jobs import claim_dataset_job, fail_dataset_job

if TYPE_CHECKING:
    from gateway.pipeline import Redactor

log = logging.getLogger(__name__)


def enqueue_review_pull(
    ctx: GatewayContext, session: Session, *, dataset_id: str, actor: Actor
) -> Job:
    """The review-pull job of `dataset_id` (which must have a review destination now)."""
    review_project(session, dataset_id)  # none: 404 before anything is queued
    now = ctx.clock()
    job = Job(
        kind=REVIEW_PULL_KIND,
        asset_id=None,
        state=JobState.QUEUED,
        max_attempts=ctx.settings.job_max_attempts,
        payload={"dataset_id": dataset_id, "actor": {"kind": actor.kind, "id": actor.id}},
        created_at=now,
        updated_at=now,
    )
    session.add(job)
    session.flush()
    return job


def review_pull_job(session: Session, job_id: int, *, dataset_id: str) -> Job:
    """Job `job_id` if it is a review pull of `dataset_id` (else NotFound: no other job)."""
    job = session.get(Job, job_id)
    if (
        job is None
        or job.kind != REVIEW_PULL_KIND
        or (job.payload or {}).get("dataset_id") != dataset_id
    ):
        raise NotFound(f"no review pull job {job_id} of this dataset", job_id=job_id)
    return job


def review_pull_job_view(job: Job) -> dict[str, Any]:
    payload = job.payload or {}
    return {
        "job_id": job.id,
        "state": JobState(job.state).value,
        "queue": job.queue if job.published_at is not None else None,  # handed to a broker
        "attempts": job.attempts,
        "error_code": job.error_code,
        "error": job.error,
        "report": payload.get("report"),
    }


def run_review_pull_job(
    ctx: GatewayContext, *, worker: str, redactor: Redactor, job_id: int | None = None
) -> str | None:
    """Claim a due review-pull job (or job `job_id`) and run it; what happened, None if none
    was due. The caller has checked that its region may open the dataset's originals."""
    job = claim_dataset_job(ctx, worker=worker, job_id=job_id, kind=REVIEW_PULL_KIND)
    if job is None or isinstance(job, str):
        return job
    payload = dict(job.payload or {})
    actor = Actor(str(payload["actor"]["kind"]), str(payload["actor"]["id"]))
    try:
        with Heartbeat(ctx.engine, job, clock=ctx.clock, timing=job_timing(ctx)):
            report = pull_decisions(ctx, str(payload["dataset_id"]), redactor=redactor, actor=actor)
    except GatewayError as exc:
        return fail_dataset_job(ctx, job, exc.code, exc.message, final=exc.status < 500)
    except Exception as exc:  # a bug or a dropped connection: retried, bounded by attempts
        log.exception("review pull job failed", extra={"job_id": job.id})
        return fail_dataset_job(ctx, job, "internal-error", type(exc).__name__, final=False)
    with transaction(ctx.engine) as session:
        if not settle(session, job, state=JobState.DONE, now=ctx.clock()):
            return "overtaken"
        session.execute(  # still this attempt's row (the fence above locked it)
            update(Job)
            .where(col(Job.id) == job.id, col(Job.attempts) == job.attempts)
            .values(payload={**payload, "report": asdict(report)})
        )
    return "done"
