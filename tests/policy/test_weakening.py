"""Weakening is never silent: a policy switching off faces, plates or the leak check needs an
explicit acknowledgement (API field, CLI flag), is recorded, and is flagged in every report of
a dataset it governs."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from gateway.cli import app
from gateway.core.models import Role
from gateway.main import create_app
from gateway.pipeline import NotBuiltRedactor
from tests.gateway.test_api import auth, make_key
from tests.policy.helpers import DEFAULT, lineage, policy_doc

pytestmark = pytest.mark.db


def weak(name: str, *off: str) -> dict[str, object]:
    switches = {p: {"enabled": False} for p in off}
    return policy_doc(name, redaction=switches).model_dump(mode="json")


@pytest.fixture
def client(ctx, settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings, ctx=ctx, redactor_factory=NotBuiltRedactor)) as c:
        yield c


@pytest.mark.parametrize("scoped", [False, True])
def test_weakening_needs_each_protection_acknowledged(client, ctx, dataset, scoped) -> None:
    key = auth(make_key(ctx, Role.ADMIN, scope=[dataset.id] if scoped else None))
    body = {"document": weak("no-faces", "faces", "leak_check"), "dataset": dataset.id}
    refused = client.post("/v1/policies", json=body, headers=key)
    assert refused.status_code == 422, refused.text
    assert refused.json()["code"] == "weakening-not-acknowledged"
    assert refused.json()["details"]["not_acknowledged"] == ["faces", "leak_check"]
    partly = client.post(
        "/v1/policies", json=body | {"acknowledge_weakening": ["faces"]}, headers=key
    )
    assert partly.json()["details"]["not_acknowledged"] == ["leak_check"]
    assert client.get("/v1/policies", headers=key).json() == []  # nothing stored
    ack = body | {"acknowledge_weakening": ["faces", "leak_check"]}
    done = client.post("/v1/policies", json=ack, headers=key)
    assert done.status_code == 201, done.text
    (record,) = lineage(ctx, "policy.weakening_acknowledged")
    assert record["parameters"]["turned_off"] == ["faces", "leak_check"]
    assert record["dataset"] == dataset.id
    assert record["actor"]["id"] == key["Authorization"].split("_")[1]


def test_a_policy_that_keeps_every_protection_needs_no_acknowledgement(client, ctx, dataset):
    key = auth(make_key(ctx, Role.ADMIN))
    body = {"document": weak("text-off", "text"), "dataset": dataset.id}  # text is optional
    assert client.post("/v1/policies", json=body, headers=key).status_code == 201
    assert lineage(ctx, "policy.weakening_acknowledged") == []


def test_every_report_it_governs_flags_it(client, ctx, dataset) -> None:
    admin, compliance = auth(make_key(ctx, Role.ADMIN)), auth(make_key(ctx, Role.COMPLIANCE))
    # an unbound dataset is governed by the `default`: weaken the default itself
    default = {"document": weak("default", "plates"), "acknowledge_weakening": ["plates"]}
    assert client.post("/v1/policies", json=default, headers=admin).status_code == 201
    report = client.get(f"/v1/datasets/{dataset.id}/report", headers=compliance).json()
    body = report["report"]
    assert body["policies"]["current"]["weakened"] == ["plates"]
    flags = [f for item in body["ai_act"]["article_10"] for f in item["findings"]]
    assert any("WEAKENED PROTECTION" in f and "plates" in f for f in flags), flags


def test_cli_needs_the_flag(settings, ctx, dataset, tmp_path: Path) -> None:
    assert settings.master_key is not None
    env = {
        "GATEWAY_DATA_DIR": str(settings.data_dir),
        "GATEWAY_DATABASE_URL": settings.resolved_database_url,
        "GATEWAY_MASTER_KEY": settings.master_key.get_secret_value(),
        "GATEWAY_REGION": "eu-de",
    }
    doc = yaml.safe_load(DEFAULT.read_text()) | {"name": "no-leak-check"}
    doc["redaction"]["leak_check"] = {"enabled": False}
    file = tmp_path / "weak.yaml"
    file.write_text(yaml.safe_dump(doc))
    args = ["policies", "activate", str(file), "--dataset", dataset.name]
    runner = CliRunner()
    refused = runner.invoke(app, args, env=env)
    assert refused.exit_code != 0
    assert "weakening-not-acknowledged" in str(refused.exception.code)  # type: ignore[union-attr]
    done = runner.invoke(app, [*args, "--acknowledge-weakening", "leak_check"], env=env)
    assert done.exit_code == 0, done.output
    assert lineage(ctx, "policy.weakening_acknowledged")[0]["parameters"]["turned_off"] == [
        "leak_check"
    ]
