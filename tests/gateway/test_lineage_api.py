"""Lineage over HTTP: roles, queries, an asset's history with proofs checked client-side."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from gateway.core.db import transaction
from gateway.core.models import Role
from gateway.lineage import Actor, append
from gateway.lineage.format.keys import unb64, verify_signature
from gateway.lineage.format.merkle import leaf_hash, verify_inclusion
from gateway.main import create_app
from gateway.pipeline import NotBuiltRedactor
from tests.gateway.test_api import auth, make_key

pytestmark = pytest.mark.db


@pytest.fixture
def client(ctx, settings) -> Iterator[TestClient]:
    app = create_app(settings, ctx=ctx, redactor_factory=NotBuiltRedactor)
    with TestClient(app) as c:
        yield c


def _subject_record(ctx, pseudonym: str) -> None:
    with transaction(ctx.engine) as s:
        append(
            s,
            action="subject.erasure-requested",
            entity_type="subject",
            entity_id=pseudonym,
            actor=Actor("api-key", "k1"),
            now=ctx.clock(),
            region="eu-de",
        )


def test_lineage_needs_the_compliance_or_admin_role(client, ctx) -> None:
    assert client.get("/v1/lineage").status_code == 401
    ingest = make_key(ctx, Role.INGEST)
    r = client.get("/v1/lineage", headers=auth(ingest))
    assert r.status_code == 403 and r.headers["content-type"] == "application/problem+json"


def test_query_by_subject_and_paging(client, ctx) -> None:
    _subject_record(ctx, "subj-7f3a")
    _subject_record(ctx, "subj-other")
    officer = make_key(ctx, Role.COMPLIANCE)
    r = client.get("/v1/lineage", params={"subject": "subj-7f3a"}, headers=auth(officer))
    assert r.status_code == 200, r.text
    records = r.json()["records"]
    assert [x["record"]["entity"] for x in records] == [{"type": "subject", "id": "subj-7f3a"}]
    page = client.get("/v1/lineage", params={"limit": 1}, headers=auth(officer)).json()
    rest = client.get(
        "/v1/lineage", params={"after_seq": page["next_after_seq"]}, headers=auth(officer)
    ).json()
    assert rest["records"][0]["seq"] == page["records"][0]["seq"] + 1


def test_asset_history_comes_with_proofs_a_client_can_check(client, ctx, dataset, tmp_path) -> None:
    from tests.gateway.bad_inputs import good_jpeg

    admin = make_key(ctx, Role.ADMIN)
    up = client.post(
        f"/v1/datasets/{dataset.id}/assets",
        files=[("files", ("a.jpg", good_jpeg(), "image/jpeg"))],
        headers=auth(admin),
    )
    assert up.status_code in (200, 201, 202), up.text
    asset_id = up.json()["results"][0]["asset_id"]
    officer = make_key(ctx, Role.COMPLIANCE)
    r = client.get(f"/v1/lineage/assets/{asset_id}", headers=auth(officer))
    assert r.status_code == 200, r.text
    history = r.json()
    keys = client.get("/v1/lineage/keys", headers=auth(officer)).json()["keys"]
    cp = history["checkpoint"]
    public = next(unb64(k["public_key"]) for k in keys if k["key_id"] == cp["key_id"])
    verify_signature(public, cp["body"].encode(), cp["signature"])
    body = json.loads(cp["body"])
    assert history["records"], "ingest writes at least one record"
    for rec in history["records"]:
        assert rec["record"]["entity"]["id"] == asset_id
        verify_inclusion(
            leaf_hash(bytes.fromhex(rec["record_hash"])),
            rec["seq"] - 1,
            body["tree_size"],
            [bytes.fromhex(p) for p in rec["inclusion_proof"]],
            bytes.fromhex(body["root_hash"]),
        )
    assert client.get("/v1/lineage/assets/nope", headers=auth(officer)).status_code == 404
    # the same history as an offline proof bundle (an export: residency-checked, recorded)
    from gateway.core.errors import ResidencyViolation
    from gateway.lineage.format.verify import Anchor, verify_bundle
    from gateway.lineage.service import prove_asset

    bundle = tmp_path / "asset.jsonl"
    with transaction(ctx.engine) as s:
        prove_asset(ctx, s, asset_id, bundle, target_region="eu-de", actor=Actor("cli", "t"))
    report = verify_bundle(bundle, anchor=Anchor(fingerprints=[keys[-1]["fingerprint"]]))
    assert report.records >= len(history["records"]) and not report.complete  # workers go on
    with pytest.raises(ResidencyViolation), transaction(ctx.engine) as s:
        prove_asset(ctx, s, asset_id, tmp_path / "x.jsonl", target_region="us-east",
                    actor=Actor("cli", "t"))  # fmt: skip
    assert not (tmp_path / "x.jsonl").exists()
