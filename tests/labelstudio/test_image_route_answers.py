"""What the signed image route tells whoever holds (or guesses) a URL: nothing before the
signature checks out, no storage path, no policy; and a flood of refused fetches costs the
ledger one record per asset and window. Real Label Studio tasks, real gateway over HTTP."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import httpx

from gateway.core.db import transaction
from gateway.core.models import Asset
from gateway.labelstudio.sync import sync_dataset
from gateway.labelstudio.urls import REFUSAL_RECORD_WINDOW
from tests.labelstudio.fixtures import ADMIN
from tests.labelstudio.helpers import lineage, project_tasks
from tests.policy.helpers import bind, policy_doc


def _first_task(ctx, dataset, destination, labelstudio) -> dict:
    report = sync_dataset(
        ctx, dataset_ref=dataset.name, destination_ref=destination.name, actor=ADMIN
    )
    return project_tasks(labelstudio, report.project_id)[0]


def _with(url: str, **query: str) -> str:
    parts = urlsplit(url)
    params = {k: v[0] for k, v in parse_qs(parts.query).items()} | query
    return parts._replace(query="&".join(f"{k}={v}" for k, v in params.items())).geturl()


def test_a_made_up_key_version_is_404_like_any_forgery(
    ctx, dataset, released, destination, labelstudio
) -> None:
    good = _first_task(ctx, dataset, destination, labelstudio)["data"]["image"]
    assert httpx.get(good).status_code == 200
    answers = [
        httpx.get(_with(good, k="2", s="0" * 64)),  # invented version, invented signature
        httpx.get(_with(good, k="2")),  # invented version, the real signature
        httpx.get(_with(good, k="999999")),
    ]
    assert [a.status_code for a in answers] == [404, 404, 404]
    assert {a.json()["detail"] for a in answers} == {"no such image"}
    assert all("shred" not in a.text and "details" not in a.json() for a in answers)


def test_no_error_names_where_the_image_is_stored(
    ctx, dataset, released, destination, labelstudio
) -> None:
    task = _first_task(ctx, dataset, destination, labelstudio)
    with transaction(ctx.engine) as s:
        blob = s.get(Asset, task["data"]["gateway_asset_id"]).redacted_blob
    assert ctx.store.delete(blob)  # the copy vanished from the store (disk loss, operator)
    answer = httpx.get(task["data"]["image"])
    assert answer.status_code == 404
    body = answer.text
    assert blob not in body and "redacted/" not in body
    assert str(ctx.settings.data_dir) not in body and "details" not in answer.json()


def test_a_refused_fetch_is_generic_and_a_flood_is_recorded_once_per_window(
    ctx, dataset, released, destination, labelstudio, clock
) -> None:
    task = _first_task(ctx, dataset, destination, labelstudio)
    url, asset_id = task["data"]["image"], task["data"]["gateway_asset_id"]
    # a new policy no longer lets annotators in this destination's region see the data
    bind(
        ctx,
        dataset,
        policy_doc("annotation-in-france-only", residency={"annotation_regions": ["FR"]}),
    )
    answers = [httpx.get(url) for _ in range(25)]  # no login, as anyone holding the URL
    assert {a.status_code for a in answers} == {403}
    body = answers[0].json()
    assert body["detail"] == "this image cannot be shown here" and "details" not in body
    for secret in ("annotation-in-france-only", dataset.id, "FR", "eu-de", "rule", "sha256"):
        assert secret not in answers[0].text
    blocked = [r for r in lineage(ctx, "residency.blocked") if r["entity"]["id"] == asset_id]
    assert len(blocked) == 1  # the refusal is evidence once, not once per request
    assert blocked[0]["parameters"]["policy"] == "annotation-in-france-only"  # kept in lineage
    clock.advance(seconds=REFUSAL_RECORD_WINDOW.total_seconds() + 1)
    assert httpx.get(url).status_code == 403
    again = [r for r in lineage(ctx, "residency.blocked") if r["entity"]["id"] == asset_id]
    assert len(again) == 2  # a new window, a new record
