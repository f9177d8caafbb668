"""Pipeline orchestration: jobs in the database, claimed by workers, run by a `Redactor`.

The embedded default is an in-process pool of threads, each driving one isolated redaction
worker process (see `redaction.isolation`); a distributed engine (Celery) can take the same
`run_job` later. Jobs hold leases, so a job whose worker died (SIGKILL, power loss) is
claimed again once its lease runs out, and nothing is lost.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import Any, Protocol

from sqlalchemy import or_
from sqlmodel import Session, col, delete, select

from gateway import crypto
from gateway.asset_states import transition
from gateway.context import GatewayContext
from gateway.db import transaction
from gateway.errors import GatewayError, ResidencyViolation
from gateway.ingest import original_aad
from gateway.keys import KeyPurpose
from gateway.lineage import Actor
from gateway.models import Asset, AssetState, Detection, Job, JobState
from gateway.policy.enforcement import EnforcementPoint, enforce_residency, storage_region
from gateway.pseudonymisation.release import release_file
from gateway.storage import redacted_key
from redaction.errors import RedactionError

PIPELINE = Actor("system", "pipeline")


@dataclass(frozen=True, slots=True)
class RedactionOutcome:
    """What a redactor hands back; plain data so it can cross a process boundary."""

    released: bool
    output: bytes | None
    extension: str
    regions: list[dict[str, Any]] = field(default_factory=list)
    reasons: list[dict[str, Any]] = field(default_factory=list)
    tools: list[dict[str, Any]] = field(default_factory=list)
    policy_digest: str = ""


class Redactor(Protocol):
    def redact(self, data: bytes) -> RedactionOutcome: ...


class NotBuiltRedactor:
    """Stands where a pipeline step is not built: it quarantines, never releases."""

    def redact(self, data: bytes) -> RedactionOutcome:
        del data
        reason = {"code": "step-not-built", "message": "pixel redaction is not configured"}
        return RedactionOutcome(released=False, output=None, extension="", reasons=[reason])


def worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def claim_job(ctx: GatewayContext, *, worker: str) -> Job | None:
    """Take the oldest queued job, or one whose lease expired; mark its asset processing."""
    now = ctx.clock()
    stale = now - timedelta(seconds=2 * ctx.settings.job_timeout_seconds)
    with transaction(ctx.engine) as session:
        job = session.exec(
            select(Job)
            .where(
                or_(
                    col(Job.state) == JobState.QUEUED,
                    (col(Job.state) == JobState.RUNNING) & (col(Job.updated_at) < stale),
                )
            )
            .order_by(col(Job.id))
            .limit(1)
            .with_for_update(skip_locked=True)
        ).first()
        if job is None:
            return None
        job.state, job.worker, job.updated_at = JobState.RUNNING, worker, now
        job.attempts += 1
        session.add(job)
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


def run_job(ctx: GatewayContext, job: Job, *, redactor: Redactor) -> AssetState:
    """Decrypt the original, redact it (outside any transaction), record the outcome."""
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
            if outcome.released and outcome.output is not None:  # metadata allowlist gate
                output = release_file(
                    ctx, dataset_id=asset.dataset_id, original=data, output=outcome.output
                )
                outcome = replace(outcome, output=output)
        except (GatewayError, RedactionError) as exc:  # fail closed: quarantine with the reason
            outcome = RedactionOutcome(
                False, None, "", reasons=[{"code": exc.code, "message": exc.message}]
            )
    return _finish(ctx, job, outcome)


def redactor_for(session: Session, asset: Asset, redactor: Redactor) -> Redactor:
    from gateway.policy.redaction_choice import redactor_for as choose

    return choose(session, asset, redactor)


def _asset(session: Session, asset_id: str) -> Asset:
    asset = session.get(Asset, asset_id)
    if asset is None:
        raise LookupError(f"job refers to a missing asset {asset_id}")
    return asset


def _finish(ctx: GatewayContext, job: Job, outcome: RedactionOutcome) -> AssetState:
    now = ctx.clock()
    released = outcome.released and outcome.output is not None
    with transaction(ctx.engine) as session:
        asset = _asset(session, job.asset_id)
        if released:
            outcome = _storage_allowed(ctx, session, asset, outcome)
            released = outcome.released
        if released:
            assert outcome.output is not None  # noqa: S101 (narrowing for mypy)
            digest = crypto.sha256_hex(outcome.output)
            asset.redacted_blob = redacted_key(
                asset.dataset_id, asset.id, digest, outcome.extension
            )
            asset.redacted_sha256 = digest
            ctx.store.put(asset.redacted_blob, outcome.output)
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
        db_job = session.get(Job, job.id)
        if db_job is not None:
            db_job.state, db_job.updated_at = JobState.DONE, now
            session.add(db_job)
        return target


def _storage_allowed(
    ctx: GatewayContext, session: Session, asset: Asset, outcome: RedactionOutcome
) -> RedactionOutcome:
    """Residency at the storage write: a blocked write quarantines the asset (fail closed)."""
    try:
        enforce_residency(
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
        return replace(outcome, released=False, output=None, reasons=[reason])
    return outcome


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


def drain(
    ctx: GatewayContext,
    *,
    redactor: Redactor,
    worker: str | None = None,
    limit: int | None = None,
    on_done: Callable[[AssetState], None] | None = None,
) -> int:
    """Run jobs until none is left (or `limit` ran); returns how many ran."""
    me = worker or worker_id()
    done = 0
    while limit is None or done < limit:
        job = claim_job(ctx, worker=me)
        if job is None:
            break
        state = run_job(ctx, job, redactor=redactor)
        done += 1
        if on_done:
            on_done(state)
    return done
