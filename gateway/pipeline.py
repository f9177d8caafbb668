"""Pipeline orchestration: redaction jobs in the database, claimed by workers, run by a
`Redactor`.

The embedded default is a supervised pool of threads (`gateway.workers`), each driving one
isolated redaction worker process (see `redaction.isolation`); a distributed engine (Celery)
can take the same `process_next` later. Jobs hold heartbeat leases (`gateway.jobs`), so a job
whose worker died (SIGKILL, power loss) is claimed again within seconds, and every write of
an attempt is fenced by its attempt number. A crashed redaction worker costs its job one
attempt; after `max_attempts` the job fails with its reason and the asset is quarantined.
"""

from __future__ import annotations

import logging
import os
import random
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import partial
from typing import Any

from sqlmodel import Session, col, delete

from gateway.asset_states import transition
from gateway.core import crypto
from gateway.core.context import GatewayContext
from gateway.core.db import transaction
from gateway.core.errors import GatewayError, ResidencyViolation
from gateway.core.keys import KeyPurpose
from gateway.core.models import Asset, AssetState, Detection, Job, JobState
from gateway.core.storage import StorageRegionUnavailable, located_key, put_cleared, redacted_key
from gateway.ingest import original_aad
from gateway.jobs import (
    ATTEMPTS_EXHAUSTED,
    REDACT_KIND,
    Heartbeat,
    claim_or_fail,
    is_outage,
    job_timing,
    retry_later,
    settle,
    spent,
)
from gateway.lineage import Actor
from gateway.metrics import JOB_SECONDS, JOBS, QUARANTINES, observe_redaction
from gateway.policy.enforcement import (
    Clearance,
    EnforcementPoint,
    enforce_residency,
    storage_region,
)
from gateway.policy.redaction_choice import redactor_for
from gateway.pseudonymisation.release import release_file
from gateway.redaction_step import NotBuiltRedactor as NotBuiltRedactor  # re-exported
from gateway.redaction_step import RedactionOutcome as RedactionOutcome
from gateway.redaction_step import Redactor as Redactor
from gateway.review.candidates import drop_candidate, keep_candidate
from redaction.errors import RedactionError

log = logging.getLogger(__name__)
PIPELINE = Actor("system", "pipeline")


def worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def claim_job(ctx: GatewayContext, *, worker: str, job_id: int | None = None) -> Job | None:
    """Take the oldest due job (or job `job_id`, if due); mark its asset processing. A job
    past its attempt limit (its last worker died with it) fails with its reason and
    quarantines its asset."""
    while True:
        now = ctx.clock()
        with transaction(ctx.engine) as session:
            give_up = partial(_give_up, ctx, code=ATTEMPTS_EXHAUSTED, now=now)
            job = claim_or_fail(
                ctx,
                session,
                worker=worker,
                now=now,
                job_id=job_id,
                kind=REDACT_KIND,
                give_up=give_up,
            )
            if job is None:
                return None
            if isinstance(job, str):  # "failed": past its attempts
                if job_id is not None:
                    return None
                continue
            asset = session.get(Asset, job.asset_id)
            if asset is not None and asset.state != AssetState.PROCESSING:
                transition(
                    session,
                    asset,
                    AssetState.PROCESSING,
                    actor=PIPELINE,
                    now=now,
                    region=ctx.settings.region,
                    parameters={"attempt": job.attempts},
                )
            return job


def _give_up(
    ctx: GatewayContext, session: Session, job: Job, *, code: str, now: Any, message: str = ""
) -> AssetState | None:
    """Fail the job for good (fenced) and quarantine its asset: fail closed."""
    message = message or (
        f"gave up after {job.max_attempts} attempts (last: {job.error_code or 'worker lost'})"
    )
    if not settle(session, job, state=JobState.FAILED, now=now, code=code, message=message):
        return None
    asset = session.get(Asset, job.asset_id)
    log.warning("job failed", extra={"job_id": job.id, "attempt": job.attempts, "code": code})
    JOBS.labels(outcome="failed", reason=code).inc()
    if asset is None or asset.state not in (AssetState.PROCESSING, AssetState.RECEIVED):
        return None
    transition(
        session,
        asset,
        AssetState.QUARANTINED,
        actor=PIPELINE,
        now=now,
        region=ctx.settings.region,
        reasons=[{"code": code, "message": message}],
        parameters={"attempt": job.attempts},
    )
    _keep_candidate(ctx, session, asset, RedactionOutcome(False, None, ""), released=False)
    QUARANTINES.labels(reason=code).inc()
    return AssetState.QUARANTINED


def retry_or_fail(
    ctx: GatewayContext,
    job: Job,
    *,
    code: str,
    message: str,
    outage: bool = False,
    rng: random.Random | None = None,
) -> AssetState | None:
    """This attempt failed without a verdict on the image: queue it again after a back-off,
    or, at the attempt limit, fail it and quarantine the asset. Fenced by the attempt. An
    `outage` (database or storage away) gives the attempt back: waiting it out loses nothing."""
    now = ctx.clock()
    with transaction(ctx.engine) as session:
        if not outage and spent(job) >= job.max_attempts:
            return _give_up(ctx, session, job, code=code, now=now, message=message)
        tries = job.deferrals + 1 if outage else spent(job)
        delay = job_timing(ctx).retry_delay(tries, rng or random.Random())  # noqa: S311 (jitter)
        if retry_later(
            session, job, now=now, delay=delay, code=code, message=message, deferred=outage
        ):
            log.warning(
                "job will be tried again",
                extra={"job_id": job.id, "attempt": job.attempts, "code": code, "delay_s": delay},
            )
            JOBS.labels(outcome="retried", reason=code).inc()
    return None


def run_job(ctx: GatewayContext, job: Job, *, redactor: Redactor) -> AssetState | None:
    """Decrypt the original, redact it (outside any transaction), record the outcome. None:
    the job will be tried again, or this attempt was overtaken (its write was fenced off)."""
    with transaction(ctx.engine) as session:
        asset = _asset(session, job.asset_id)
        key = ctx.keys.dataset_key(session, asset.dataset_id, version=asset.key_version)
    if asset.original_blob is None:
        outcome = RedactionOutcome(
            False,
            None,
            "",
            reasons=[{"code": "original-missing", "message": "the original is no longer stored"}],
        )
    else:
        try:
            sealed = ctx.store.get(asset.original_blob)
            data = crypto.unseal(
                sealed, key=key.subkey(KeyPurpose.AT_REST), aad=original_aad(asset.id, key)
            )
            with transaction(ctx.engine) as session:  # the dataset's policy chooses
                chosen = redactor_for(session, _asset(session, job.asset_id), redactor)
            outcome = chosen.redact(data)
            if outcome.retryable:
                reason = outcome.reasons[0]
                return retry_or_fail(
                    ctx, job, code=str(reason["code"]), message=str(reason.get("message", ""))
                )
            if outcome.released and outcome.output is not None:  # metadata allowlist gate
                output = release_file(
                    ctx, dataset_id=asset.dataset_id, original=data, output=outcome.output
                )
                outcome = replace(outcome, output=output)
        except StorageRegionUnavailable as exc:  # this process may not read that region's bucket:
            # no verdict on the image; tried again (by a worker of its region), bounded
            return retry_or_fail(ctx, job, code=exc.code, message=exc.message)
        except (GatewayError, RedactionError) as exc:  # fail closed: quarantine with the reason
            outcome = RedactionOutcome(
                False, None, "", reasons=[{"code": exc.code, "message": exc.message}]
            )
    return _finish(ctx, job, outcome)


def _asset(session: Session, asset_id: str | None) -> Asset:
    asset = None if asset_id is None else session.get(Asset, asset_id)
    if asset is None:
        raise LookupError(f"job refers to a missing asset {asset_id}")
    return asset


class _Overtaken(Exception):
    """A newer attempt owns the job: roll this attempt's writes back."""


def _finish(ctx: GatewayContext, job: Job, outcome: RedactionOutcome) -> AssetState | None:
    try:
        return _record_outcome(ctx, job, outcome)
    except _Overtaken:
        log.warning(
            "stale job attempt discarded", extra={"job_id": job.id, "attempt": job.attempts}
        )
        JOBS.labels(outcome="stale", reason="overtaken").inc()
        return None


def _record_outcome(ctx: GatewayContext, job: Job, outcome: RedactionOutcome) -> AssetState:
    now = ctx.clock()
    released = outcome.released and outcome.output is not None
    with transaction(ctx.engine) as session:
        if not settle(session, job, state=JobState.DONE, now=now):  # fence first (row lock)
            raise _Overtaken
        asset = _asset(session, job.asset_id)
        clearance = None
        if released:
            outcome, clearance = _storage_allowed(ctx, session, asset, outcome)
            released = outcome.released
        if released:
            assert outcome.output is not None and clearance is not None  # noqa: S101 (mypy)
            digest = crypto.sha256_hex(outcome.output)
            asset.redacted_blob = located_key(
                ctx.store,
                redacted_key(asset.dataset_id, asset.id, digest, outcome.extension),
                region=storage_region(ctx),
            )
            asset.redacted_sha256 = digest
            put_cleared(ctx.store, asset.redacted_blob, outcome.output, clearance)
        _keep_candidate(ctx, session, asset, outcome, released=released)
        _record_detections(session, asset.id, outcome.regions)
        target = AssetState.RELEASED if released else AssetState.QUARANTINED
        transition(
            session,
            asset,
            target,
            actor=PIPELINE,
            now=now,
            region=ctx.settings.region,
            reasons=None
            if released
            else (
                outcome.reasons
                or [{"code": "not-released", "message": "redaction did not confirm a safe output"}]
            ),
            outputs={"redacted_sha256": asset.redacted_sha256} if released else None,
            parameters={
                "tools": outcome.tools,
                "regions": _region_counts(outcome.regions),
                "redaction_policy_sha256": outcome.policy_digest,
            },
        )
        observe_redaction(target.value, reasons=outcome.reasons, timings_ms=outcome.timings_ms)
        return target


def _keep_candidate(
    ctx: GatewayContext,
    session: Session,
    asset: Asset,
    outcome: RedactionOutcome,
    *,
    released: bool,
) -> None:
    """A new outcome replaces an earlier candidate; a leak-check quarantine keeps its own
    (sealed, for review only: gateway.review.candidates)."""
    if released:
        drop_candidate(ctx, session, asset.id)
        return
    keep_candidate(
        ctx,
        session,
        asset,
        image=outcome.candidate,
        leak_hits=outcome.leak_hits,
        reasons=outcome.reasons,
        actor=PIPELINE,
    )


def _storage_allowed(
    ctx: GatewayContext, session: Session, asset: Asset, outcome: RedactionOutcome
) -> tuple[RedactionOutcome, Clearance | None]:
    """Residency at the storage write: a blocked write quarantines the asset (fail closed)."""
    try:
        clearance = enforce_residency(
            ctx,
            session,
            point=EnforcementPoint.STORAGE_WRITE,
            dataset_id=asset.dataset_id,
            target_region=storage_region(ctx),
            actor=PIPELINE,
            entity_type="asset",
            entity_id=asset.id,
        )
    except ResidencyViolation as exc:
        reason = {"code": exc.code, "message": exc.message}
        return replace(outcome, released=False, output=None, reasons=[reason]), None
    return outcome, clearance


def _record_detections(session: Session, asset_id: str, regions: list[dict[str, Any]]) -> None:
    """The current rendition's regions replace an earlier run's (re-processing)."""
    session.exec(delete(Detection).where(col(Detection.asset_id) == asset_id))
    for r in regions:
        session.add(
            Detection(
                asset_id=asset_id,
                label=r["label"],
                x=r["x"],
                y=r["y"],
                w=r["w"],
                h=r["h"],
                score_milli=round(float(r.get("score", 0.0)) * 1000),
                detector=r["detector"],
                stage=r.get("stage", "detect"),
            )
        )


def _region_counts(regions: list[dict[str, Any]]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for r in regions:
        counts[r["label"]] = counts.get(r["label"], 0) + 1
    return counts


@dataclass(frozen=True)
class Ran:
    """One claimed job: the asset state it ended in (None: retried later or overtaken)."""

    job_id: int | None
    state: AssetState | None


def process_next(
    ctx: GatewayContext, *, redactor: Redactor, worker: str, job_id: int | None = None
) -> Ran | None:
    """Claim one job (with `job_id`: that one) and run it under a heartbeat; None when
    nothing is due. An error in the run (database or disk away, a bug) spends the attempt,
    then propagates to the caller's supervisor, which backs off."""
    job = claim_job(ctx, worker=worker, job_id=job_id)
    if job is None:
        return None
    started = time.perf_counter()
    error: Exception | None = None
    with Heartbeat(ctx.engine, job, clock=ctx.clock, timing=job_timing(ctx)):
        try:
            state = run_job(ctx, job, redactor=redactor)
        except Exception as exc:
            error = exc
    JOB_SECONDS.observe(time.perf_counter() - started)
    if error is not None:  # after the heartbeat stopped: it must not touch a requeued job
        _after_error(ctx, job, error)
        raise error
    return Ran(job.id, state)


def _after_error(ctx: GatewayContext, job: Job, exc: Exception) -> None:
    outage = is_outage(exc)
    code = "outage" if outage else str(getattr(exc, "code", None) or "job-error")
    try:
        retry_or_fail(ctx, job, code=code, message=type(exc).__name__, outage=outage)
    except Exception as again:  # the database is away too: the lease runs out instead
        log.warning("could not requeue job %s: %s", job.id, type(again).__name__)


def drain(
    ctx: GatewayContext,
    *,
    redactor: Redactor,
    worker: str | None = None,
    limit: int | None = None,
    on_done: Callable[[AssetState], None] | None = None,
) -> int:
    """Run due jobs until none is left (or `limit` ran); returns how many ran."""
    me = worker or worker_id()
    done = 0
    while limit is None or done < limit:
        ran = process_next(ctx, redactor=redactor, worker=me)
        if ran is None:
            break
        done += 1
        if on_done and ran.state is not None:
            on_done(ran.state)
    return done
