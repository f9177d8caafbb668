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

from typing import Any

from sqlmodel import Session

from gateway.core.context import GatewayContext
from gateway.core.models import Job, JobState
from gateway.dataset_jobs import dataset_job, enqueue_dataset_job, run_dataset_job
from gateway.jobs import SYNC_KIND
from gateway.labelstudio.destinations import get_destination
from gateway.labelstudio.sync import sync_dataset
from gateway.lineage import Actor


def enqueue_sync(
    ctx: GatewayContext, session: Session, *, dataset_id: str, destination_ref: str, actor: Actor
) -> Job:
    """The sync job of `dataset_id` to `destination_ref` (which must exist now)."""
    destination = get_destination(session, destination_ref)
    return enqueue_dataset_job(
        ctx, session, SYNC_KIND, dataset_id=dataset_id, actor=actor, destination=destination.name
    )


def sync_job(session: Session, job_id: int, *, dataset_id: str) -> Job:
    """Job `job_id` if it is a sync of `dataset_id` (else NotFound: no other job is shown)."""
    return dataset_job(session, job_id, kind=SYNC_KIND, dataset_id=dataset_id)


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

    def sync(payload: dict[str, Any], actor: Actor) -> dict[str, Any]:
        return sync_dataset(
            ctx,
            dataset_ref=str(payload["dataset_id"]),
            destination_ref=str(payload["destination"]),
            actor=actor,
        ).view()

    return run_dataset_job(
        ctx, worker=worker, job_id=job_id, kind=SYNC_KIND, actor=Actor, work=sync
    )
