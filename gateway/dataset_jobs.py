"""Jobs for a whole dataset (a sync to a destination, a review pull): queued with the caller
in their payload, claimed and run under a heartbeat by the same job model as an asset's
redaction (`gateway.jobs`), the report kept in the payload."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, Literal, Protocol, TypeVar

from sqlalchemy import update
from sqlmodel import Session, col

from gateway.core.context import GatewayContext
from gateway.core.db import transaction
from gateway.core.errors import GatewayError, NotFound
from gateway.core.models import Job, JobState
from gateway.jobs import (
    RNG,
    Heartbeat,
    claim_or_fail,
    job_timing,
    retry_later,
    settle,
    spent,
)

log = logging.getLogger(__name__)
A = TypeVar("A")


class Caller(Protocol):
    """Who queued a dataset job (a `gateway.lineage.Actor`)."""

    @property
    def kind(self) -> str: ...

    @property
    def id(self) -> str: ...


def enqueue_dataset_job(
    ctx: GatewayContext,
    session: Session,
    kind: str,
    *,
    dataset_id: str,
    actor: Caller,
    **payload: Any,
) -> Job:
    """A queued job of `kind` for `dataset_id` (no asset), the caller and `payload` in its
    payload; flushed, so it has its id."""
    now = ctx.clock()
    job = Job(
        kind=kind,
        asset_id=None,
        state=JobState.QUEUED,
        max_attempts=ctx.settings.job_max_attempts,
        payload={
            "dataset_id": dataset_id,
            **payload,
            "actor": {"kind": actor.kind, "id": actor.id},
        },
        created_at=now,
        updated_at=now,
    )
    session.add(job)
    session.flush()
    return job


def dataset_job(session: Session, job_id: int, *, kind: str, dataset_id: str) -> Job:
    """Job `job_id` if it is a job of `kind` for `dataset_id` (else NotFound: no other job is
    shown)."""
    job = session.get(Job, job_id)
    if job is None or job.kind != kind or (job.payload or {}).get("dataset_id") != dataset_id:
        raise NotFound(f"no {kind.replace('-', ' ')} job {job_id} of this dataset", job_id=job_id)
    return job


def run_dataset_job(
    ctx: GatewayContext,
    *,
    worker: str,
    job_id: int | None,
    kind: str,
    actor: Callable[[str, str], A],
    work: Callable[[dict[str, Any], A], dict[str, Any]],
) -> str | None:
    """Claim a due job of `kind` (or job `job_id`) and do its `work` (the payload and the
    caller, made by `actor(kind, id)`) under a heartbeat, keeping the report it returns in
    the payload; what happened ("done", "failed", "retry", "overtaken"), None if none was due."""
    job = claim_dataset_job(ctx, worker=worker, job_id=job_id, kind=kind)
    if job is None or isinstance(job, str):
        return job
    payload = dict(job.payload or {})
    caller = actor(str(payload["actor"]["kind"]), str(payload["actor"]["id"]))
    try:
        with Heartbeat(ctx.engine, job, clock=ctx.clock, timing=job_timing(ctx)):
            report = work(payload, caller)
    except GatewayError as exc:
        return fail_dataset_job(ctx, job, exc.code, exc.message, final=exc.status < 500)
    except Exception as exc:  # a bug or a dropped connection: retried, bounded by attempts
        log.exception("%s job failed", kind.replace("-", " "), extra={"job_id": job.id})
        return fail_dataset_job(ctx, job, "internal-error", type(exc).__name__, final=False)
    with transaction(ctx.engine) as session:
        if not settle(session, job, state=JobState.DONE, now=ctx.clock()):
            return "overtaken"
        session.execute(  # still this attempt's row (the fence above locked it)
            update(Job)
            .where(col(Job.id) == job.id, col(Job.attempts) == job.attempts)
            .values(payload={**payload, "report": report})
        )
    return "done"


def claim_dataset_job(
    ctx: GatewayContext, *, worker: str, job_id: int | None, kind: str
) -> Job | Literal["failed"] | None:
    """The claimed job of `kind` (detached), "failed" if it was past its attempts, None if
    none was due."""
    now = ctx.clock()
    with transaction(ctx.engine) as session:
        job = claim_or_fail(ctx, session, worker=worker, now=now, job_id=job_id, kind=kind)
        if isinstance(job, Job):
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
        delay = job_timing(ctx).retry_delay(spent(job), RNG)
        retry_later(session, job, now=now, delay=delay, code=code, message=message)
    return "retry"
