"""`POST /v1/datasets/{ref}/sync?background=true`: 202 with a job at once, run by the job
workers (here the embedded ones of the real gateway server), polled until done with the same
report the synchronous answer gives; a second background sync sends nothing twice."""

from __future__ import annotations

import httpx

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
