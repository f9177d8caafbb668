"""The task a woken worker runs, in process: idempotent by job id."""

from __future__ import annotations

import pytest
from sqlmodel import select

from gateway.db import transaction
from gateway.models import Job, JobState
from gateway.scaleout.tasks import WorkerRuntime, run_woken_job
from tests.gateway.test_jobs import Releases, ingest
from tests.policy.helpers import lineage

pytestmark = [pytest.mark.db, pytest.mark.timeout(60)]


def test_a_duplicate_or_stale_wake_up_changes_nothing(ctx, dataset):
    asset_id = ingest(ctx, dataset)
    redactor = Releases()
    rt = WorkerRuntime(ctx, "eu-de", redactor, "host:1:eu-de")
    with transaction(ctx.engine) as s:
        [job] = s.exec(select(Job)).all()
    assert run_woken_job(rt, job.id) == "released"
    assert run_woken_job(rt, job.id) == "already-done"  # the broker delivered it twice
    assert run_woken_job(rt, 10_000) == "missing"  # a wake-up for a job that is not there
    assert redactor.calls == 1
    with transaction(ctx.engine) as s:
        done = s.get(Job, job.id)
    assert done.state == JobState.DONE and done.attempts == 1
    assert [r["entity"]["id"] for r in lineage(ctx, "asset.released")] == [asset_id]
