"""The job life cycle: leases, heartbeats, attempt fencing, the attempt limit and outages.

Real database (SQLite, and PostgreSQL when configured), real keys and storage; the redactors
are small stand-ins that return plain outcomes (the redaction engine has its own tests)."""

from __future__ import annotations

import dataclasses
import threading
import time

import pytest
from sqlmodel import col, select

from gateway.core.clock import utc_now
from gateway.core.db import transaction
from gateway.core.models import Asset, AssetState, Job, JobState, LineageRecord
from gateway.ingest import Upload, ingest_upload
from gateway.lineage import Actor
from gateway.pipeline import (
    RedactionOutcome,
    claim_job,
    drain,
    process_next,
    run_job,
)
from redaction.io import decode_image, encode_image
from redaction.policy import Limits
from tests.gateway.bad_inputs import good_jpeg

pytestmark = [pytest.mark.db, pytest.mark.timeout(60)]


class Releases:
    def __init__(self) -> None:
        self.calls = 0

    def redact(self, data: bytes) -> RedactionOutcome:
        self.calls += 1
        pixels = decode_image(data, limits=Limits()).pixels
        return RedactionOutcome(released=True, output=encode_image(pixels), extension="jpg")


class Crashes:
    """What the isolated redactor answers when its worker process died mid-image."""

    def redact(self, data: bytes) -> RedactionOutcome:
        del data
        reason = {"code": "worker-crashed", "message": "the redaction worker died"}
        return RedactionOutcome(released=False, output=None, extension="", reasons=[reason])


def ingest(ctx, dataset, seed: int = 1) -> str:
    with transaction(ctx.engine) as s:
        out = ingest_upload(
            s, ctx, dataset, Upload(f"{seed}.jpg", good_jpeg(seed)), actor=Actor("cli", "t")
        )
    return out.asset_id


def job_of(ctx, asset_id: str) -> Job:
    with transaction(ctx.engine) as s:
        return s.exec(select(Job).where(Job.asset_id == asset_id)).one()


def asset(ctx, asset_id: str) -> Asset:
    with transaction(ctx.engine) as s:
        found = s.get(Asset, asset_id)
        assert found is not None
        return found


def actions(ctx, asset_id: str) -> list[str]:
    with transaction(ctx.engine) as s:
        rows = s.exec(
            select(LineageRecord)
            .where(LineageRecord.entity_id == asset_id)
            .order_by(col(LineageRecord.seq))
        ).all()
        return [r.action for r in rows]


def test_a_stale_attempt_cannot_overwrite_the_newer_result(ctx, dataset, clock) -> None:
    asset_id = ingest(ctx, dataset)
    first = claim_job(ctx, worker="old")
    assert first is not None and first.attempts == 1
    assert claim_job(ctx, worker="other") is None  # leased: nobody else takes it
    clock.advance(seconds=ctx.settings.job_lease_seconds + 1)  # the old worker went silent
    second = claim_job(ctx, worker="new")
    assert second is not None and second.id == first.id and second.attempts == 2
    assert run_job(ctx, second, redactor=Crashes()) is None  # back in the queue (attempt 2)
    clock.advance(seconds=120)
    third = claim_job(ctx, worker="new")
    assert third is not None and third.attempts == 3
    assert run_job(ctx, third, redactor=Releases()) == AssetState.RELEASED
    released = asset(ctx, asset_id).redacted_sha256

    class LateQuarantine:  # the first worker wakes up with a verdict of its own
        def redact(self, data: bytes) -> RedactionOutcome:
            del data
            return RedactionOutcome(False, None, "", reasons=[{"code": "x", "message": "late"}])

    assert run_job(ctx, first, redactor=LateQuarantine()) is None  # fenced off
    assert run_job(ctx, second, redactor=Releases()) is None
    final = asset(ctx, asset_id)
    assert final.state == AssetState.RELEASED and final.redacted_sha256 == released
    assert actions(ctx, asset_id).count("asset.released") == 1
    assert "asset.quarantined" not in actions(ctx, asset_id)
    job = job_of(ctx, asset_id)
    assert job.state == JobState.DONE and job.attempts == 3 and job.lease_expires_at is None


def test_a_crashing_job_fails_with_its_reason_after_max_attempts(ctx, dataset, clock) -> None:
    asset_id = ingest(ctx, dataset)
    ran = 0
    while True:
        result = process_next(ctx, redactor=Crashes(), worker="w")
        if result is None:
            job = job_of(ctx, asset_id)
            if job.state != JobState.QUEUED:
                break
            clock.advance(seconds=120)  # past the retry back-off
            continue
        ran += 1
    job = job_of(ctx, asset_id)
    assert ran == job.max_attempts == 5
    assert job.state == JobState.FAILED and job.error_code == "worker-crashed"
    assert job.finished_at is not None
    final = asset(ctx, asset_id)
    assert final.state == AssetState.QUARANTINED and final.redacted_blob is None
    assert final.reasons[-1]["code"] == "worker-crashed"
    assert actions(ctx, asset_id).count("asset.quarantined") == 1
    from prometheus_client import REGISTRY

    assert REGISTRY.get_sample_value(
        "gateway_jobs_total", {"outcome": "failed", "reason": "worker-crashed"}
    )
    assert REGISTRY.get_sample_value("gateway_quarantines_total", {"reason": "worker-crashed"})


def test_a_job_whose_worker_died_on_the_last_attempt_fails_at_the_next_claim(
    ctx, dataset, clock
) -> None:
    asset_id = ingest(ctx, dataset)
    for _ in range(5):  # five workers each claimed it and died (kill -9) without a word
        assert claim_job(ctx, worker="doomed") is not None
        clock.advance(seconds=ctx.settings.job_lease_seconds + 1)
    assert claim_job(ctx, worker="next") is None  # no sixth attempt: it fails instead
    job = job_of(ctx, asset_id)
    assert job.state == JobState.FAILED and job.error_code == "attempts-exhausted"
    assert asset(ctx, asset_id).state == AssetState.QUARANTINED


def test_an_outage_gives_the_attempt_back(ctx, dataset, clock) -> None:
    asset_id = ingest(ctx, dataset)

    class DiskFull:
        def redact(self, data: bytes) -> RedactionOutcome:
            del data
            raise OSError(28, "No space left on device")

    for _ in range(8):  # more outages than attempts: the job is still waiting, not failed
        with pytest.raises(OSError):
            process_next(ctx, redactor=DiskFull(), worker="w")
        clock.advance(seconds=120)
    job = job_of(ctx, asset_id)
    assert job.state == JobState.QUEUED and job.deferrals == 8 and job.error_code == "outage"
    assert drain(ctx, redactor=Releases()) == 1
    assert asset(ctx, asset_id).state == AssetState.RELEASED
    assert job_of(ctx, asset_id).state == JobState.DONE


def test_a_slow_job_heartbeats_and_is_never_taken_twice(ctx, dataset) -> None:
    real = dataclasses.replace(
        ctx,
        clock=utc_now,
        settings=ctx.settings.model_copy(
            update={"job_lease_seconds": 1.0, "job_heartbeat_seconds": 0.2}
        ),
    )
    asset_id = ingest(real, dataset)
    polls: list[tuple[float, Job | None]] = []
    started = threading.Event()
    stop = threading.Event()

    def other_worker() -> None:
        started.wait(10)
        while not stop.is_set():
            polls.append((time.monotonic(), claim_job(real, worker="other")))
            stop.wait(0.05)

    class Slow(Releases):
        """Busy for three leases, measured by the other worker's polls, not by a sleep."""

        def redact(self, data: bytes) -> RedactionOutcome:
            begin = time.monotonic()
            started.set()
            deadline = begin + 30
            while not any(t > begin + 3 * 1.0 for t, _ in polls):
                assert time.monotonic() < deadline, "the other worker stopped polling"
                stop.wait(0.05)
            return super().redact(data)

    poller = threading.Thread(target=other_worker)
    poller.start()
    try:
        assert drain(real, redactor=Slow(), worker="slow") == 1
    finally:
        stop.set()
        poller.join()
    assert all(job is None for _, job in polls)  # never taken while it heartbeat
    job = job_of(real, asset_id)
    assert job.state == JobState.DONE and job.attempts == 1
    assert asset(real, asset_id).state == AssetState.RELEASED
