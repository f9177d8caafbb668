from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlmodel import select

from gateway.apikeys import create_api_key
from gateway.core.db import transaction
from gateway.core.models import Asset, AssetState, Role
from gateway.lineage import Actor, verify_chain
from gateway.main import create_app
from gateway.pipeline import NotBuiltRedactor
from tests.conftest import DATASET_SPEC
from tests.gateway.bad_inputs import corpus, good_jpeg

pytestmark = pytest.mark.db


def make_key(
    ctx,
    role: Role,
    scope: list[str] | None = None,
    *,
    label: str = "t",
    actor: Actor | None = None,
    **kw,
) -> str:
    with transaction(ctx.engine) as s:
        _, token = create_api_key(
            s,
            role=role,
            label=label,
            dataset_scope=scope,
            expires_at=kw.get("expires_at"),
            pepper=ctx.keys.api_key_pepper(),
            actor=actor or Actor("cli", "t"),
            now=ctx.clock(),
            region="eu-de",
        )
    return token


@pytest.fixture
def client(ctx, settings) -> Iterator[TestClient]:
    # Pixel redaction is exercised in the pipeline tests; here the step that is not wired in
    # must quarantine, never release.
    app = create_app(settings, ctx=ctx, redactor_factory=NotBuiltRedactor)
    with TestClient(app) as c:
        yield c


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_health_is_the_only_anonymous_endpoint(client) -> None:
    assert client.get("/health").json() == {"status": "ok"}
    r = client.get("/v1/datasets")
    assert r.status_code == 401
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["code"] == "not-authenticated"


def test_roles_and_dataset_scope(client, ctx) -> None:
    admin = make_key(ctx, Role.ADMIN)
    r = client.post("/v1/datasets", json=DATASET_SPEC, headers=auth(admin))
    assert r.status_code == 201, r.text
    ds = r.json()["id"]
    other = client.post("/v1/datasets", json=DATASET_SPEC | {"name": "other"}, headers=auth(admin))
    ingest = make_key(ctx, Role.INGEST, scope=[ds])
    assert (
        client.post(
            "/v1/datasets", json=DATASET_SPEC | {"name": "x"}, headers=auth(ingest)
        ).status_code
        == 403
    )
    assert client.get(f"/v1/datasets/{ds}", headers=auth(ingest)).status_code == 200
    hidden = client.get(f"/v1/datasets/{other.json()['id']}", headers=auth(ingest))
    assert hidden.status_code == 404
    assert [d["id"] for d in client.get("/v1/datasets", headers=auth(ingest)).json()] == [ds]
    ml = make_key(ctx, Role.ML)
    assert client.get("/v1/datasets", headers=auth(ml)).status_code == 403


def test_dataset_requires_governance_fields(client, ctx) -> None:
    admin = make_key(ctx, Role.ADMIN)
    body = {k: v for k, v in DATASET_SPEC.items() if k != "legal_basis"}
    r = client.post("/v1/datasets", json=body, headers=auth(admin))
    assert r.status_code == 422
    assert r.json()["code"] == "invalid-request"
    assert ["body", "legal_basis"] in [e["loc"] for e in r.json()["details"]["errors"]]


def test_expired_and_revoked_keys_are_refused(client, ctx) -> None:
    expired = make_key(ctx, Role.ADMIN, expires_at=ctx.clock() + timedelta(minutes=5))
    assert client.get("/v1/datasets", headers=auth(expired)).status_code == 200
    ctx.clock.advance(minutes=6)
    assert client.get("/v1/datasets", headers=auth(expired)).json()["detail"].endswith("expired")
    admin = make_key(ctx, Role.ADMIN)
    victim = make_key(ctx, Role.ADMIN)
    key_id = victim.split("_")[1]
    assert client.delete(f"/v1/api-keys/{key_id}", headers=auth(admin)).status_code == 200
    assert client.get("/v1/datasets", headers=auth(victim)).status_code == 401
    listed = client.get("/v1/api-keys", headers=auth(admin)).json()
    assert all("secret" not in k and "token" not in k for k in listed)


def test_bad_inputs_are_rejected_and_good_files_in_the_same_request_are_kept(
    client, ctx, dataset
) -> None:
    token = make_key(ctx, Role.INGEST, scope=[dataset.id])
    bad = corpus()
    files = [("files", (name, data, "application/octet-stream")) for name, data in bad.values()]
    files += [
        ("files", ("good-1.jpg", good_jpeg(10), "image/jpeg")),
        ("files", ("sub/good-2.jpg", good_jpeg(11), "image/jpeg")),
    ]
    r = client.post(f"/v1/datasets/{dataset.id}/assets", files=files, headers=auth(token))
    assert r.status_code == 207, r.text
    results = {item["file"]: item for item in r.json()["results"]}
    expected_codes = {
        "truncated-jpeg": {"corrupt-image"},
        "bogus-png-size": {"image-too-large", "corrupt-image"},
        "bomb-30000": {"image-too-large"},
        "gif": {"unsupported-format"},
        "svg": {"unsupported-format"},
        "polyglot": {"corrupt-image", "unsupported-format"},
        "zero-bytes": {"empty-input"},
        "traversal-name": {"invalid-file-name"},
    }
    for case, (name, _) in bad.items():
        item = results[name]
        assert item["state"] == "rejected", case
        assert item["problem"]["details"]["reason"] in expected_codes[case], (case, item)
        assert item["problem"]["status"] == 422
    for good in ("good-1.jpg", "sub/good-2.jpg"):
        assert results[good]["state"] == "received"
    with transaction(ctx.engine) as s:
        assets = s.exec(select(Asset)).all()
        rejected = [a for a in assets if a.state == AssetState.REJECTED]
        assert len(rejected) == len(bad)
        assert all(a.original_blob is None and a.redacted_blob is None for a in rejected)
        assert verify_chain(s) > 0


def test_single_rejected_file_answers_problem_json(client, ctx, dataset) -> None:
    token = make_key(ctx, Role.INGEST)
    r = client.post(
        f"/v1/datasets/{dataset.id}/assets",
        headers=auth(token),
        files=[("files", ("x.gif", corpus()["gif"][1], "image/gif"))],
    )
    assert r.status_code == 422
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["details"]["reason"] == "unsupported-format"
    state = client.get(f"/v1/assets/{r.json()['asset_id']}", headers=auth(token)).json()
    assert state["state"] == "rejected"
    assert state["reasons"][0]["code"] == "unsupported-format"


def test_upload_is_idempotent_and_unbuilt_step_quarantines(client, ctx, dataset) -> None:
    token = make_key(ctx, Role.INGEST)
    data = good_jpeg(5)
    first = client.post(
        f"/v1/datasets/{dataset.name}/assets",
        headers=auth(token),
        files=[("files", ("a.jpg", data, "image/jpeg"))],
    ).json()["results"][0]
    again = client.post(
        f"/v1/datasets/{dataset.name}/assets",
        headers=auth(token),
        files=[("files", ("b.jpg", data, "image/jpeg"))],
    ).json()["results"][0]
    assert again["duplicate"] and again["asset_id"] == first["asset_id"]
    client.app.state.supervisor.stop()  # finish the in-flight job deterministically
    from gateway.pipeline import drain

    drain(ctx, redactor=NotBuiltRedactor())
    asset = client.get(f"/v1/assets/{first['asset_id']}", headers=auth(token)).json()
    assert asset["state"] == "quarantined"
    assert asset["reasons"][-1]["code"] == "step-not-built"
    assert asset["redacted_sha256"] is None
