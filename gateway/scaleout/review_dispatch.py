"""`POST .../review/pull` with a broker: the pull runs as a task on the worker of the
dataset's region, never in the API process (a release re-renders from the original, which
only a worker holding the dataset's key and bucket may open).

The dataset's work goes to one region's queue (`routing.dataset_queue`: its residency and the
region holding its key), so one task is sent, naming the region and the dataset; the worker
checks the region again before it pulls. The broker keeps no results (`task_ignore_result`):
the answer says where the pull went and under which task id (the worker's log names it), and
what the pull decides is recorded in lineage as the periodic pull's is.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from gateway.context import GatewayContext
from gateway.db import transaction
from gateway.errors import Conflict
from gateway.scaleout.broker import region_queue
from gateway.scaleout.periodic import REVIEW_PULL_TASK
from gateway.scaleout.routing import HELD, dataset_queue


@dataclass(frozen=True, slots=True)
class ReviewPullDispatched:
    dataset_id: str
    region: str
    queue: str
    task_id: str


def dispatch_review_pull(
    ctx: GatewayContext, dataset_id: str, *, broker: Any
) -> ReviewPullDispatched:
    """Send one review pull of `dataset_id` to its region's queue (`broker`: the Celery app).
    A dataset without a review destination is refused (404) before anything is sent, and one
    no worker region may process (409), as its jobs are held."""
    from gateway.review.project import review_project

    settings = ctx.settings
    with transaction(ctx.engine) as session:
        review_project(session, dataset_id)  # none: 404 now, as without a broker
        queue = dataset_queue(ctx, session, dataset_id)
    region = next(
        (
            r
            for r in settings.routing_regions
            if region_queue(r, prefix=settings.broker_queue_prefix) == queue
        ),
        None,
    )
    if queue == HELD or region is None:
        raise Conflict(
            "no worker region may process this dataset (its residency or its key's region "
            "allows none of GATEWAY_WORKER_REGIONS): its review pull cannot run anywhere",
            dataset=dataset_id,
        )
    result = broker.send_task(
        REVIEW_PULL_TASK,
        args=[region, dataset_id],
        queue=queue,
        routing_key=queue,
        expires=max(settings.review_pull_interval_seconds, 300.0),
    )
    return ReviewPullDispatched(dataset_id, region, queue, str(result.id))
