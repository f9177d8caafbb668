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

from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from sqlmodel import Session

from gateway.core.context import GatewayContext
from gateway.core.models import Job, JobState
from gateway.dataset_jobs import dataset_job, enqueue_dataset_job, run_dataset_job
from gateway.jobs import REVIEW_PULL_KIND
from gateway.lineage import Actor
from gateway.review.decide import pull_decisions
from gateway.review.queue import review_project

if TYPE_CHECKING:
    from gateway.pipeline import Redactor


def enqueue_review_pull(
    ctx: GatewayContext, session: Session, *, dataset_id: str, actor: Actor
) -> Job:
    """The review-pull job of `dataset_id` (which must have a review destination now)."""
    review_project(session, dataset_id)  # none: 404 before anything is queued
    return enqueue_dataset_job(ctx, session, REVIEW_PULL_KIND, dataset_id=dataset_id, actor=actor)


def review_pull_job(session: Session, job_id: int, *, dataset_id: str) -> Job:
    """Job `job_id` if it is a review pull of `dataset_id` (else NotFound: no other job)."""
    return dataset_job(session, job_id, kind=REVIEW_PULL_KIND, dataset_id=dataset_id)


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

    def pull(payload: dict[str, Any], actor: Actor) -> dict[str, Any]:
        report = pull_decisions(ctx, str(payload["dataset_id"]), redactor=redactor, actor=actor)
        return asdict(report)

    return run_dataset_job(
        ctx, worker=worker, job_id=job_id, kind=REVIEW_PULL_KIND, actor=Actor, work=pull
    )
