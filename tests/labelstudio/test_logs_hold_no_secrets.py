"""A full flow through the real gateway HTTP server and the real Label Studio, with the
service's JSON logs captured at INFO: upload, redaction by the supervised workers, sync,
the annotator's image fetch, an annotation arriving by webhook, a metrics scrape. The logs
are not empty, every line is JSON, requests carry ids, and none of the keys, tokens, secrets,
subject ids or file names this run made or used appears in them."""

from __future__ import annotations

import base64
import io
import json
import logging
import time
from collections.abc import Iterator
from urllib.parse import urlsplit

import httpx
import pytest
from sqlmodel import select

from gateway.core.db import transaction
from gateway.core.models import Asset, AssetState, Role
from gateway.labelstudio.destinations import open_secrets
from gateway.labelstudio.sync import sync_dataset
from gateway.labelstudio.tables import Annotation
from gateway.logs import QUIET, configure_logging
from tests.conftest import PHOTOS
from tests.gateway.test_api import make_key
from tests.labelstudio.fixtures import ADMIN, FAST_RETRY, PHOTO_NAMES
from tests.labelstudio.helpers import PERSON_BOX, project_tasks, sdk

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]
SUBJECT = "alice.subject-7731@example.org"


@pytest.fixture
def json_logs() -> Iterator[io.StringIO]:
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    levels = {name: logging.getLogger(name).level for name in (*QUIET, "uvicorn", "uvicorn.error")}
    buffer = io.StringIO()
    configure_logging("INFO", stream=buffer)
    yield buffer
    root.handlers[:], root.level = saved
    for name, level in levels.items():
        logging.getLogger(name).setLevel(level)


def _wait(condition, what: str, deadline: float = 120.0) -> None:
    end = time.monotonic() + deadline
    while not condition():
        assert time.monotonic() < end, f"timed out waiting for {what}"
        time.sleep(0.05)


def test_a_full_flow_logs_at_info_and_never_a_secret(
    ctx, dataset, json_logs, destination, labelstudio, gateway_server
) -> None:
    token = make_key(ctx, Role.INGEST)
    names = PHOTO_NAMES[:2]
    r = httpx.post(
        f"{gateway_server}/v1/datasets/{dataset.name}/assets",
        headers={"Authorization": f"Bearer {token}"},
        files=[("files", (n, (PHOTOS / n).read_bytes(), "image/jpeg")) for n in names],
        data={"metadata": json.dumps([{"subject_id": SUBJECT}] * len(names))},
        timeout=60,
    )
    assert r.status_code == 201, r.text
    ids = [row["asset_id"] for row in r.json()["results"]]

    def released() -> bool:
        with transaction(ctx.engine) as s:
            return all(s.get(Asset, i).state == AssetState.RELEASED for i in ids)  # type: ignore[union-attr]

    _wait(released, "the supervised workers to release the uploads")
    report = sync_dataset(
        ctx,
        dataset_ref=dataset.name,
        destination_ref=destination.name,
        actor=ADMIN,
        retry=FAST_RETRY,
    )
    tasks = project_tasks(labelstudio, report.project_id)
    image_urls = [t["data"]["image"] for t in tasks]
    for url in image_urls:  # as the annotator's browser fetches them
        assert httpx.get(url, headers={"Origin": labelstudio.url}).status_code == 200
    with sdk(labelstudio) as client:
        client.annotations.create(tasks[0]["id"], result=[PERSON_BOX])

    def annotated() -> bool:
        with transaction(ctx.engine) as s:
            return len(s.exec(select(Annotation)).all()) == 1

    _wait(annotated, "the webhook")
    metrics = httpx.get(f"{gateway_server}/metrics").text
    assert "gateway_sync_tasks_total" in metrics and "gateway_webhooks_total" in metrics
    assert "gateway_ledger_records_total" in metrics

    text = json_logs.getvalue()
    lines = [json.loads(line) for line in text.splitlines()]
    assert lines, "the flow logged nothing"
    assert any(e["level"] == "INFO" and e["msg"] == "job finished" for e in lines)
    requests = [e for e in lines if e["logger"] == "gateway.http"]
    assert requests and all(e.get("request_id") for e in requests)
    assert {"/v1/webhooks/labelstudio/{destination_id}", "/metrics"} <= {
        e["route"] for e in requests
    }

    secrets = open_secrets(ctx, destination)
    assert ctx.settings.master_key is not None
    pepper = ctx.keys.api_key_pepper()
    leaks = {
        "api key": token,
        "master key": ctx.settings.master_key.get_secret_value(),
        "label studio token": labelstudio.token,
        "destination token": secrets.token,
        "webhook secret": secrets.webhook_secret,
        "api key pepper (hex)": pepper.hex(),
        "api key pepper (base64)": base64.b64encode(pepper).decode(),
        "subject id": SUBJECT,
        **{f"file name {n}": n for n in names},
        **{f"image url query {i}": urlsplit(u).query for i, u in enumerate(image_urls)},
    }
    for what, secret in leaks.items():
        assert secret, what
        assert secret not in text, f"the logs hold the {what}"
