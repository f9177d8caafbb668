"""`POST .../review/pull` with a broker: the pull runs on a worker of the dataset's region,
never in the API process (a release re-renders from the original, which only a worker holding
the dataset's key and bucket may open).

The API commits a review-pull job (`gateway.review.pull_jobs`) and wakes its dispatcher; the
relay routes the job like the dataset's other jobs (`routing.queue_for`: its residency and the
region holding its key) and re-sends it if the broker loses it. The worker checks again that
the dataset's work is routed to its own region before it claims the job.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from gateway.core.context import GatewayContext
from gateway.core.db import transaction
from gateway.core.errors import Conflict
from gateway.core.models import Job
from gateway.lineage import Actor
from gateway.review.pull_jobs import enqueue_review_pull, review_pull_job_view, run_review_pull_job
from gateway.scaleout.broker import region_queue
from gateway.scaleout.routing import HELD, dataset_queue

if TYPE_CHECKING:
    from gateway.scaleout.tasks import WorkerRuntime


def queue_review_pull(ctx: GatewayContext, dataset_id: str, *, actor: Actor) -> dict[str, Any]:
    """Commit a review-pull job of `dataset_id`; its view (to poll). A dataset without a
    review destination is refused (404), one no worker region may process (409: its jobs are
    held), before anything is queued."""
    with transaction(ctx.engine) as session:
        if dataset_queue(ctx, session, dataset_id) == HELD:
            raise Conflict(
                "no worker region may process this dataset (its residency or its key's region "
                "allows none of GATEWAY_WORKER_REGIONS): its review pull cannot run anywhere",
                dataset=dataset_id,
            )
        job = enqueue_review_pull(ctx, session, dataset_id=dataset_id, actor=actor)
        return review_pull_job_view(job)


def run_review_pull_wakeup(rt: WorkerRuntime, job_id: int) -> str:
    """Run review-pull job `job_id` on this worker if the dataset's work is routed to its
    region (else leave it for that region's worker)."""
    mine = region_queue(rt.region, prefix=rt.ctx.settings.broker_queue_prefix)
    with transaction(rt.ctx.engine) as session:
        job = session.get(Job, job_id)
        if job is None:
            return "missing"
        if dataset_queue(rt.ctx, session, str((job.payload or {}).get("dataset_id"))) != mine:
            return "refused-region"
    ran = run_review_pull_job(rt.ctx, worker=rt.name, redactor=rt.redactor, job_id=job_id)
    return ran or "not-due"
