"""The security review's authorisation findings (issue 21), each reproduced as it was found."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from gateway.core.models import Role
from gateway.main import create_app
from gateway.pipeline import NotBuiltRedactor
from tests.conftest import DATASET_SPEC
from tests.gateway.test_api import auth, make_key

pytestmark = pytest.mark.db


@pytest.fixture
def client(ctx, settings) -> Iterator[TestClient]:
    app = create_app(settings, ctx=ctx, redactor_factory=NotBuiltRedactor)
    with TestClient(app) as c:
        yield c


@pytest.fixture
def two(client, ctx) -> dict[str, Any]:
    """Two datasets, an unscoped admin, and an admin and a compliance key scoped to the first."""
    root = make_key(ctx, Role.ADMIN)
    own = client.post("/v1/datasets", json=DATASET_SPEC, headers=auth(root)).json()["id"]
    other = client.post(
        "/v1/datasets", json=DATASET_SPEC | {"name": "other"}, headers=auth(root)
    ).json()["id"]
    return {
        "root": root,
        "own": own,
        "other": other,
        "admin": make_key(ctx, Role.ADMIN, scope=[own]),
        "compliance": make_key(ctx, Role.COMPLIANCE, scope=[own]),
    }


def test_scoped_admin_cannot_mint_an_unscoped_or_wider_key(client, two) -> None:
    h = auth(two["admin"])
    unscoped = client.post("/v1/api-keys", json={"role": "admin"}, headers=h)
    assert unscoped.status_code == 403, unscoped.text
    wider = {"role": "admin", "dataset_scope": [two["own"], two["other"]]}
    assert client.post("/v1/api-keys", json=wider, headers=h).status_code == 403
    inside = client.post(
        "/v1/api-keys", json={"role": "ingest", "dataset_scope": [two["own"]]}, headers=h
    )
    assert inside.status_code == 201, inside.text
    assert inside.json()["dataset_scope"] == [two["own"]]


def test_key_scopes_name_existing_datasets_by_id(client, two) -> None:
    for scope in (["no-such-dataset"], ["street-scenes"]):  # unknown id; a name, not an id
        r = client.post(
            "/v1/api-keys", json={"role": "ml", "dataset_scope": scope}, headers=auth(two["root"])
        )
        assert r.status_code == 422, r.text
        assert r.headers["content-type"] == "application/problem+json"
        assert r.json()["details"]["unknown"] == scope


def test_scoped_admin_cannot_read_another_datasets_vault(client, two) -> None:
    body = {"pseudonym": "subj-0001", "purpose": "erasure request 2026-014 check"}
    url = f"/v1/datasets/{two['other']}/vault/read"
    assert client.post(url, json=body, headers=auth(two["admin"])).status_code == 404
    r = client.post(url, json=body, headers=auth(two["root"]))  # the vault itself answers
    assert r.json()["detail"].startswith("no vault entry"), r.text


def test_scoped_admin_lists_and_revokes_only_keys_in_its_scope(client, two) -> None:
    h = auth(two["admin"])
    listed = client.get("/v1/api-keys", headers=h)
    assert listed.status_code == 200
    assert all(
        k["dataset_scope"] and set(k["dataset_scope"]) <= {two["own"]} for k in listed.json()
    )
    root_id = two["root"].split("_")[1]
    assert root_id not in {k["id"] for k in listed.json()}
    assert client.delete(f"/v1/api-keys/{root_id}", headers=h).status_code == 404
    assert client.get("/v1/datasets", headers=auth(two["root"])).status_code == 200
    compliance_id = two["compliance"].split("_")[1]
    assert client.delete(f"/v1/api-keys/{compliance_id}", headers=h).status_code == 200


def test_scoped_admin_cannot_activate_the_default_policy(client, two) -> None:
    from tests.policy.helpers import policy_doc

    doc = policy_doc("default").model_dump(mode="json")
    h = auth(two["admin"])
    assert client.post("/v1/policies", json={"document": doc}, headers=h).status_code == 403
    bound = {"document": doc, "dataset": two["own"]}  # bound or not, `default` governs all
    assert client.post("/v1/policies", json=bound, headers=h).status_code == 403
    mine = {"document": policy_doc("mine").model_dump(mode="json"), "dataset": two["own"]}
    assert client.post("/v1/policies", json=mine, headers=h).status_code == 201


def test_scoped_compliance_cannot_release_another_datasets_hold(client, two) -> None:
    hold = client.post(
        "/v1/retention/holds",
        json={"dataset": two["other"], "reason": "case 2026-7"},
        headers=auth(two["root"]),
    ).json()
    r = client.delete(f"/v1/retention/holds/{hold['id']}", headers=auth(two["compliance"]))
    assert r.status_code == 404, r.text
    own = client.post(
        "/v1/retention/holds",
        json={"dataset": two["own"], "reason": "case 2026-8"},
        headers=auth(two["compliance"]),
    ).json()
    assert (
        client.delete(
            f"/v1/retention/holds/{own['id']}", headers=auth(two["compliance"])
        ).status_code
        == 204
    )


def test_asset_read_has_a_role_check(client, ctx, two) -> None:
    from tests.gateway.bad_inputs import good_jpeg

    up = client.post(
        f"/v1/datasets/{two['own']}/assets",
        files=[("files", ("a.jpg", good_jpeg(3), "image/jpeg"))],
        headers=auth(two["root"]),
    )
    asset_id = up.json()["results"][0]["asset_id"]
    ml = make_key(ctx, Role.ML, scope=[two["own"]])
    assert client.get(f"/v1/assets/{asset_id}", headers=auth(ml)).status_code == 403


def test_a_key_row_written_into_the_database_without_the_pepper_is_refused(client, ctx) -> None:
    """Someone with database write access but not the master key cannot mint a working key."""
    import os
    from datetime import UTC, datetime

    from gateway.core import crypto
    from gateway.core.db import transaction
    from gateway.core.models import ApiKey

    secret = "s" * 43
    with transaction(ctx.engine) as s:
        s.add(
            ApiKey(
                id="forged000001",
                secret_hash=crypto.keyed_digest(secret.encode(), key=os.urandom(32)),
                role=Role.ADMIN,
                label="forged",
                dataset_scope=None,
                created_at=datetime.now(UTC),
            )
        )
    r = client.get("/v1/datasets", headers=auth(f"lpg_forged000001_{secret}"))
    assert r.status_code == 401


def test_a_scoped_retention_run_deletes_only_in_its_own_datasets(client, ctx, two) -> None:
    from tests.gateway.bad_inputs import good_jpeg

    for i, target in enumerate(("own", "other")):
        files = [("files", (f"{target}.jpg", good_jpeg(20 + i), "image/jpeg"))]
        up = client.post(
            f"/v1/datasets/{two[target]}/assets", files=files, headers=auth(two["root"])
        )
        assert up.status_code == 201, up.text
    client.app.state.supervisor.stop()  # finish in-flight jobs before the clock moves
    from gateway.pipeline import drain

    drain(ctx, redactor=NotBuiltRedactor())
    ctx.clock.advance(days=400)  # past every default retention period
    url = "/v1/retention/run"

    def due(key: str) -> set[str]:
        r = client.post(url, params={"dry_run": "true"}, headers=auth(key))
        return {item["dataset_id"] for item in r.json()["items"]}

    assert due(two["root"]) == {two["own"], two["other"]}
    assert due(two["admin"]) == {two["own"]}
    done = client.post(url, params={"dry_run": "false"}, headers=auth(two["admin"]))
    assert {item["dataset_id"] for item in done.json()["items"]} == {two["own"]}
    assert due(two["root"]) == {two["other"]}  # the other dataset's items are untouched


@pytest.mark.parametrize(
    "edit",
    [
        {"dataset_scope": None},  # widened to every dataset
        {"role": Role.COMPLIANCE},  # another role
        {"revoked_at": None},  # revived
        {"expires_at": None},  # made eternal
    ],
)
def test_a_key_row_edited_in_the_database_stops_authenticating(client, ctx, two, edit) -> None:
    """Someone with database write access cannot widen, change or revive an existing key."""
    from datetime import timedelta

    from gateway.core.db import transaction
    from gateway.core.models import ApiKey

    token = make_key(ctx, Role.ADMIN, scope=[two["own"]], expires_at=ctx.clock() + timedelta(1))
    key_id = token.split("_")[1]
    assert client.get("/v1/datasets", headers=auth(token)).status_code == 200
    if "revoked_at" in edit:
        client.delete(f"/v1/api-keys/{key_id}", headers=auth(two["root"]))
        assert client.get("/v1/datasets", headers=auth(token)).status_code == 401
    with transaction(ctx.engine) as s:
        row = s.get(ApiKey, key_id)
        for name, value in edit.items():
            setattr(row, name, value)
        s.add(row)
    r = client.get("/v1/datasets", headers=auth(token))
    assert r.status_code == 401, r.text
    assert "changed outside the gateway" in r.json()["detail"]


def test_an_unsealed_key_is_refused_until_the_operator_seals_it(client, ctx, settings) -> None:
    from typer.testing import CliRunner

    from gateway.apikeys import seal_unsealed_keys
    from gateway.cli import app as cli_app
    from gateway.core.db import transaction
    from gateway.core.models import ApiKey

    token = make_key(ctx, Role.ADMIN)
    with transaction(ctx.engine) as s:  # as a key created before sealing existed
        row = s.get(ApiKey, token.split("_")[1])
        row.seal = None
        s.add(row)
    assert client.get("/v1/datasets", headers=auth(token)).status_code == 401
    with transaction(ctx.engine) as s:  # what `privacy-gateway api-keys seal` runs
        assert seal_unsealed_keys(s, pepper=ctx.keys.api_key_pepper()) == [token.split("_")[1]]
    assert client.get("/v1/datasets", headers=auth(token)).status_code == 200
    env = {
        "GATEWAY_DATA_DIR": str(settings.data_dir),
        "GATEWAY_DATABASE_URL": settings.resolved_database_url,
        "GATEWAY_MASTER_KEY": settings.master_key.get_secret_value(),
    }
    sealed = CliRunner().invoke(cli_app, ["api-keys", "seal"], env=env)
    assert sealed.exit_code == 0 and "sealed 0 key(s)" in sealed.output, sealed.output
