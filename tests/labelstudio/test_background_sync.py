"""`POST /v1/datasets/{ref}/sync?background=true`: 202 with a job at once, run by the job
workers (here the embedded ones of the real gateway server), polled until done with the same
report the synchronous answer gives; a second background sync sends nothing twice."""

from __future__ import annotations

import httpx
import pytest

from tests.labelstudio.helpers import project_tasks
from tests.labelstudio.test_sync_after_retention import _admin_key
from tests.scaleout.helpers import wait_for


def _done(url: str, headers: dict[str, str]) -> dict | None:
    body = httpx.get(url, headers=headers, timeout=30).json()
    return body if body["state"] in ("done", "failed") else None


def test_a_background_sync_is_a_job_to_poll(
    ctx, dataset, released, destination, labelstudio, gateway_server
) -> None:
    headers = {"Authorization": f"Bearer {_admin_key(ctx)}"}
    sync = f"{gateway_server}/v1/datasets/{dataset.name}/sync"
    reports = []
    for _ in range(2):
        answer = httpx.post(
            sync, params={"to": destination.name, "background": "true"}, headers=headers
        )
        assert answer.status_code == 202, answer.text
        job = answer.json()
        assert job["state"] == "queued" and job["destination"] == destination.name
        body = wait_for(
            lambda j=job: _done(f"{sync}/{j['job_id']}", headers),
            timeout=120,
            what="the background sync to finish",
        )
        assert (body["state"], body["attempts"], body["error_code"]) == ("done", 1, None)
        reports.append(body["report"])
    first, second = reports
    assert (first["created"], first["failed"]) == (len(released), [])
    assert (second["created"], second["already"]) == (0, len(released))  # nothing twice
    tasks = project_tasks(labelstudio, first["project_id"])
    assert sorted(t["data"]["gateway_asset_id"] for t in tasks) == sorted(released)
    missing = httpx.get(f"{sync}/999999", headers=headers)
    assert missing.status_code == 404


@pytest.mark.integration
@pytest.mark.timeout(180)
def test_a_background_sync_runs_on_a_celery_worker(
    ctx, dataset, released, labelstudio, tmp_path
) -> None:
    """With a broker: the sync job is routed and published by the relay, and a real
    `privacy-gateway worker` process (not this one) runs it against the real Label Studio."""
    from gateway.core.clock import utc_now
    from gateway.core.db import transaction
    from gateway.core.models import Job, JobState
    from gateway.lineage import Actor
    from gateway.scaleout.broker import celery_app
    from gateway.scaleout.relay import CeleryPublisher, dispatch
    from gateway.sync_jobs import enqueue_sync
    from tests.labelstudio.fixtures import add_destination
    from tests.scaleout.helpers import delete_queues, gateway_env, process, with_broker

    ctx.clock = utc_now  # the worker process runs on the wall clock
    ctx.settings = with_broker(ctx.settings, relay_interval_seconds=0.5)
    destination = add_destination(
        ctx, labelstudio, "http://127.0.0.1:9", name="annotators-bg", region="eu-de"
    )  # no gateway server here: nothing in this process runs jobs
    try:
        with transaction(ctx.engine) as s:
            job_id = enqueue_sync(
                ctx,
                s,
                dataset_id=dataset.id,
                destination_ref=destination.name,
                actor=Actor("cli", "t"),
            ).id
        assert dispatch(ctx, CeleryPublisher(celery_app(ctx.settings))) == 1

        def settled() -> Job | None:
            with transaction(ctx.engine) as s:
                job = s.get(Job, job_id)
                return job if job and job.state in (JobState.DONE, JobState.FAILED) else None

        env = gateway_env(ctx.settings)
        with process(["worker", "--port", "0"], env=env, log=tmp_path / "worker.log"):
            job = wait_for(settled, timeout=120, what="the worker to run the sync job")
        assert job.state == JobState.DONE, (tmp_path / "worker.log").read_text()[-3000:]
        assert job.attempts == 1 and job.worker and job.worker.endswith(":eu-de")
        report = job.payload["report"]
        assert (report["created"], report["failed"]) == (len(released), [])
        tasks = project_tasks(labelstudio, report["project_id"])
        assert sorted(t["data"]["gateway_asset_id"] for t in tasks) == sorted(released)
    finally:
        delete_queues(ctx.settings.broker_queue_prefix)
