"""The redaction task a Celery worker runs: a wake-up naming a job id, nothing more.

Idempotent by job id: a job already settled, not yet due, or held by a live lease elsewhere
is left alone (the message is acknowledged; the relay wakes the job again when it is due).
Before claiming, the worker checks again that its own region may process the dataset
(residency) and that its credential can unwrap the dataset's key (custody); a refusal is
recorded in lineage and the job is left for a worker of the right region.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta

from gateway.core.context import GatewayContext
from gateway.core.db import transaction
from gateway.core.errors import KeyCustodyRefused, KeyUnavailable, ResidencyViolation
from gateway.core.models import Asset, Job, JobState
from gateway.jobs import REVIEW_PULL_KIND, SYNC_KIND
from gateway.lineage import Action, Actor, recorder_at
from gateway.pipeline import Redactor, process_next
from gateway.policy.enforcement import EnforcementPoint, enforce_residency
from gateway.scaleout.review_dispatch import run_review_pull_wakeup
from gateway.sync_jobs import run_sync_job

log = logging.getLogger(__name__)
REFUSAL_RECORDED_ONCE_PER = timedelta(minutes=10)


@dataclass
class WorkerRuntime:
    """What a worker process holds: its context, its region (from its credential when a key
    service is configured), its redactor and its name in the job table."""

    ctx: GatewayContext
    region: str
    redactor: Redactor
    name: str

    @property
    def actor(self) -> Actor:
        return Actor("system", f"worker:{self.region}")


def run_woken_job(rt: WorkerRuntime, job_id: int) -> str:
    """Run job `job_id` if it is due and this worker may; returns what happened."""
    with transaction(rt.ctx.engine) as session:
        job = session.get(Job, job_id)
        if job is None:
            return "missing"
        if job.state in (JobState.DONE, JobState.FAILED):
            return f"already-{JobState(job.state).value}"  # a duplicate wake-up
        kind = job.kind
        asset = None if job.asset_id is None else session.get(Asset, job.asset_id)
        if asset is not None:
            session.expunge(asset)
    if kind == REVIEW_PULL_KIND:  # re-renders from originals: this region's datasets only
        return run_review_pull_wakeup(rt, job_id)
    if kind == SYNC_KIND:  # a dataset's sync (no asset, no residency gate of a worker: the
        # sync itself checks the destination's residency for the dataset)
        return run_sync_job(rt.ctx, worker=rt.name, job_id=job_id) or "not-due"
    if asset is None:
        return "missing"
    refusal = refusal_for(rt, asset)
    if refusal is not None:
        return refusal
    try:
        ran = process_next(rt.ctx, redactor=rt.redactor, worker=rt.name, job_id=job_id)
    except Exception:  # the attempt was spent and the job sent back; the relay wakes it
        log.exception("job run failed; it will be woken again", extra={"job_id": job_id})
        return "error"
    if ran is None:
        return "not-due"
    return ran.state.value if ran.state is not None else "retry"


def refusal_for(rt: WorkerRuntime, asset: Asset) -> str | None:
    """Residency for this worker's region, then key custody; None if both allow."""
    ctx = rt.ctx
    try:
        with transaction(ctx.engine) as session:  # both checks in one read-only transaction
            enforce_residency(
                ctx,
                session,
                point=EnforcementPoint.INGEST,
                dataset_id=asset.dataset_id,
                target_region=rt.region,
                actor=rt.actor,
                entity_type="asset",
                entity_id=asset.id,
                record_once_per=REFUSAL_RECORDED_ONCE_PER,
            )  # a refusal is recorded in its own transaction once this one ended
            ctx.keys.dataset_key(session, asset.dataset_id, version=asset.key_version)
    except ResidencyViolation as exc:
        log.warning("job refused: residency", extra={"asset_id": asset.id, "rule": exc.code})
        return "refused-residency"
    except KeyCustodyRefused as exc:
        record_custody_refusal(rt, asset, exc)
        return "refused-key-custody"
    except KeyUnavailable as exc:  # the key service is away, or the key was shredded (its
        # jobs are cancelled with it): not claimed, so no attempt is spent; woken again later
        log.warning("job left: key unavailable", extra={"asset_id": asset.id, "code": exc.code})
        return "key-unavailable"
    return None


def record_custody_refusal(rt: WorkerRuntime, asset: Asset, exc: KeyCustodyRefused) -> None:
    log.warning("job refused: key custody", extra={"asset_id": asset.id, "code": exc.code})
    with transaction(rt.ctx.engine) as session:
        recorder_at(session, actor=rt.actor, region=rt.region, now=rt.ctx.clock()).record(
            Action.KEY_CUSTODY_REFUSED,
            entity=asset.id,
            dataset=asset.dataset_id,
            parameters={
                "code": exc.code,
                "worker_region": rt.region,
                "wrapped_under": str(exc.details.get("key_id") or ""),
            },
        )
