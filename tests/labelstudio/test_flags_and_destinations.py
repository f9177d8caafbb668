"""The annotators' privacy flag, destinations (tokens sealed, checked, never returned), the
signed image URLs, and the generated labelling configuration, against the real server."""

from __future__ import annotations

import time

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlmodel import select

from gateway.core.db import transaction
from gateway.core.models import Asset, AssetState, AssetSync, Destination, Role, SyncState
from gateway.datasets import Ontology
from gateway.labelstudio.client import LabelStudioClient
from gateway.labelstudio.config import PRIVACY_FLAG_NAME, label_config
from gateway.labelstudio.destinations import DestinationSpec, register_destination
from gateway.labelstudio.errors import LabelStudioRejected, LabelStudioUnavailable
from gateway.labelstudio.server import free_port
from gateway.labelstudio.sync import sync_dataset
from gateway.labelstudio.tables import Incident
from gateway.main import create_app
from gateway.outbound import AddressPolicy
from tests.gateway.test_api import make_key
from tests.labelstudio.fixtures import ADMIN, FAST_RETRY
from tests.labelstudio.helpers import lineage, project_tasks, sdk


def test_privacy_flag_quarantines_opens_an_incident_and_pulls_the_task(
    ctx, dataset, released, destination, labelstudio
) -> None:
    report = sync_dataset(
        ctx, dataset_ref=dataset.name, destination_ref=destination.name, actor=ADMIN
    )
    task = project_tasks(labelstudio, report.project_id)[0]
    asset_id = task["data"]["gateway_asset_id"]
    flag = {
        "from_name": PRIVACY_FLAG_NAME,
        "to_name": "image",
        "type": "choices",
        "value": {"choices": ["face visible"]},
    }
    with sdk(labelstudio) as client:
        client.annotations.create(task["id"], result=[flag])
    with transaction(ctx.engine) as s:  # the webhook answered: the asset is quarantined
        assert s.get(Asset, asset_id).state == AssetState.QUARANTINED
    _wait_until(lambda: _incidents(ctx))  # opened once Label Studio confirms the flag
    with transaction(ctx.engine) as s:
        incident = s.exec(select(Incident)).one()
        assert incident.asset_id == asset_id and incident.kind == "annotator_leak_flag"
        assert incident.details["flags"] == ["face visible"]
    assert httpx.get(task["data"]["image"]).status_code in (404, 410)  # never served again
    _wait_until(lambda: _sync_state(ctx, asset_id, destination.id) == SyncState.REMOVED)
    gone = httpx.get(
        f"{labelstudio.url}/api/tasks/{task['id']}",
        headers={"Authorization": f"Token {labelstudio.token}"},
    )
    assert gone.status_code == 404
    assert [r["entity"]["id"] for r in lineage(ctx, "incident.opened")] == [incident.id]


def _incidents(ctx) -> list[Incident]:
    with transaction(ctx.engine) as s:
        return list(s.exec(select(Incident)).all())


def _sync_state(ctx, asset_id: str, destination_id: str) -> SyncState:
    with transaction(ctx.engine) as s:
        return SyncState(s.get(AssetSync, (asset_id, destination_id)).state)


def _wait_until(check, seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.05)  # the withdrawal runs after the webhook's answer


def test_pull_reconciles_annotations_the_webhook_missed(
    ctx, dataset, released, destination, labelstudio
) -> None:
    from gateway.labelstudio.annotations import pull_annotations
    from gateway.labelstudio.tables import Annotation

    report = sync_dataset(
        ctx, dataset_ref=dataset.name, destination_ref=destination.name, actor=ADMIN
    )
    task = project_tasks(labelstudio, report.project_id)[1]
    box = {
        "from_name": "boxes",
        "to_name": "image",
        "type": "rectanglelabels",
        "value": {"x": 1, "y": 2, "width": 3, "height": 4, "rectanglelabels": ["person"]},
    }
    with sdk(labelstudio) as client:
        made = client.annotations.create(task["id"], result=[box])
    with transaction(ctx.engine) as s:  # as if the webhook had been lost
        for row in s.exec(select(Annotation)).all():
            s.delete(row)
    pulled = pull_annotations(ctx, destination, actor=ADMIN)
    assert pulled.stored == 1
    with transaction(ctx.engine) as s:
        rows = s.exec(select(Annotation)).all()
    assert [(r.ls_annotation_id, r.task_id) for r in rows] == [(made.id, task["id"])]
    assert pull_annotations(ctx, destination, actor=ADMIN).stored == 1  # no duplicate row
    with sdk(labelstudio) as client:
        client.annotations.delete(made.id)
    _wait_until(lambda: _deleted(ctx))  # ANNOTATIONS_DELETED, read back as 404


def _deleted(ctx) -> bool:
    from gateway.labelstudio.tables import Annotation

    with transaction(ctx.engine) as s:
        return s.exec(select(Annotation)).one().deleted_at is not None


def _spec(url: str, token: str, name: str = "dest") -> DestinationSpec:
    return DestinationSpec.model_validate(
        {
            "name": name,
            "url": url,
            "token": token,
            "region": "eu-de",
            "gateway_url": "http://127.0.0.1:1",
            "allow_local_addresses": True,  # the test server listens on loopback
        }
    )


def test_registration_checks_the_server_and_the_token(ctx, labelstudio) -> None:
    with transaction(ctx.engine) as s, pytest.raises(LabelStudioRejected):
        register_destination(ctx, s, _spec(labelstudio.url, "wrong-token"), actor=ADMIN)
    dead = f"http://127.0.0.1:{free_port()}"
    with transaction(ctx.engine) as s, pytest.raises(LabelStudioUnavailable):
        register_destination(ctx, s, _spec(dead, labelstudio.token), actor=ADMIN, retry=FAST_RETRY)
    with transaction(ctx.engine) as s:
        assert s.exec(select(Destination)).all() == []
        dest = register_destination(ctx, s, _spec(labelstudio.url, labelstudio.token), actor=ADMIN)
        assert labelstudio.token.encode() not in dest.token_sealed
        assert dest.master_key_id == ctx.keys.master.key_id


def test_api_never_returns_the_token(ctx, labelstudio) -> None:
    admin = make_key(ctx, Role.ADMIN, actor=ADMIN)
    app = create_app(ctx.settings, ctx=ctx, redactor_factory=lambda: None)  # type: ignore[arg-type,return-value]
    body = {
        "name": "api-dest",
        "url": labelstudio.url,
        "token": labelstudio.token,
        "region": "eu-de",
        "gateway_url": "http://127.0.0.1:1",
        "allow_local_addresses": True,
    }
    with TestClient(app) as client:
        headers = {"Authorization": f"Bearer {admin}"}
        created = client.post("/v1/destinations", json=body, headers=headers)
        assert created.status_code == 201, created.text
        listed = client.get("/v1/destinations", headers=headers)
        bad = client.post("/v1/destinations", json={**body, "region": "atlantis"}, headers=headers)
    assert labelstudio.token not in created.text + listed.text
    assert [d["name"] for d in listed.json()] == ["api-dest"]
    assert bad.status_code == 422 and bad.headers["content-type"] == "application/problem+json"


def test_image_urls_refuse_forged_signatures(ctx, dataset, released, destination, labelstudio):
    report = sync_dataset(
        ctx, dataset_ref=dataset.name, destination_ref=destination.name, actor=ADMIN
    )
    tasks = project_tasks(labelstudio, report.project_id)
    good, other = tasks[0]["data"]["image"], tasks[1]["data"]
    assert httpx.get(good).status_code == 200
    forged = good.rsplit("s=", 1)[0] + "s=" + "0" * 64
    assert httpx.get(forged).status_code == 404
    swapped = good.replace(tasks[0]["data"]["gateway_asset_id"], other["gateway_asset_id"])
    assert httpx.get(swapped).status_code == 404  # a signature is for one asset only


def test_labelling_config_from_every_control_is_accepted_by_label_studio(labelstudio) -> None:
    ontology = Ontology.model_validate(
        {
            "labels": [
                {"name": "person", "control": "box"},
                {"name": "road", "control": "polygon"},
                {"name": "sky", "control": "brush"},
                {"name": "nose", "control": "keypoint"},
                {"name": "night", "control": "choice"},
                {"name": 'a "quoted" <label>', "control": "box"},
            ],
            "instructions": "Box every person.",
        }
    )
    config = label_config(ontology)
    for tag in ("RectangleLabels", "PolygonLabels", "BrushLabels", "KeyPointLabels", "Choices"):
        assert f"<{tag} " in config
    client = LabelStudioClient(
        labelstudio.url, labelstudio.token, policy=AddressPolicy(allow_local_addresses=True)
    )
    try:
        project = client.create_project(
            title="config check", description="", label_config=config, instructions="x"
        )
        assert client.project_exists(project)
    finally:
        client.close()
