"""One pagination scheme on every list: `limit` plus `offset` (resources) or `after_seq` (the
lineage ledger), a `Link: rel="next"` header while more follow, bodies unchanged."""

from __future__ import annotations

from collections.abc import Iterator

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
    with TestClient(create_app(settings, ctx=ctx, redactor_factory=NotBuiltRedactor)) as c:
        yield c


def _next(response) -> str | None:
    link = response.headers.get("link")
    if link is None:
        return None
    assert link.endswith('>; rel="next"'), link
    return link[1 : link.index(">")]


def test_every_list_operation_takes_a_limit_and_announces_the_next_page(client) -> None:
    document = client.get("/openapi.json").json()
    lists = []
    for path, ops in document["paths"].items():
        for method, op in ops.items():
            content = op["responses"].get("200", {}).get("content", {})
            schema = content.get("application/json", {}).get("schema", {})
            if method == "get" and (schema.get("type") == "array" or path == "/v1/lineage"):
                lists.append(path)
                names = {p["name"] for p in op.get("parameters", []) if p["in"] == "query"}
                cursor = "after_seq" if path == "/v1/lineage" else "offset"
                assert {"limit", cursor} <= names, path
                assert "Link" in op["responses"]["200"]["headers"], path
    assert len(lists) == 6, lists


def test_offset_pages_walk_a_list_once_and_stop(client, ctx) -> None:
    admin = auth(make_key(ctx, Role.ADMIN))
    names = [f"ds-{i}" for i in range(5)]
    for name in names:
        assert client.post("/v1/datasets", json=DATASET_SPEC | {"name": name}, headers=admin)
    first = client.get("/v1/datasets", params={"limit": 2}, headers=admin)
    assert first.status_code == 200
    assert first.headers["x-total-count"] == "5"
    seen, url, pages = [d["name"] for d in first.json()], _next(first), 1
    while url is not None:
        more = client.get(url, headers=admin)
        assert len(more.json()) <= 2
        seen += [d["name"] for d in more.json()]
        url, pages = _next(more), pages + 1
    assert (seen, pages) == (names, 3)
    everything = client.get("/v1/datasets", headers=admin)
    assert "link" not in everything.headers and len(everything.json()) == 5
    assert client.get("/v1/datasets", params={"limit": 0}, headers=admin).status_code == 422
    assert client.get("/v1/datasets", params={"offset": -1}, headers=admin).status_code == 422
    assert client.get("/v1/datasets", params={"offset": 9}, headers=admin).json() == []


def test_the_lineage_cursor_follows_the_link(client, ctx) -> None:
    admin = auth(make_key(ctx, Role.ADMIN))
    for i in range(3):
        client.post("/v1/datasets", json=DATASET_SPEC | {"name": f"l-{i}"}, headers=admin)
    officer = auth(make_key(ctx, Role.COMPLIANCE))
    total = len(
        client.get("/v1/lineage", params={"limit": 1000}, headers=officer).json()["records"]
    )
    assert total >= 3
    response = client.get("/v1/lineage", params={"limit": 2}, headers=officer)
    seqs = [r["seq"] for r in response.json()["records"]]
    url = _next(response)
    while url is not None:
        response = client.get(url, headers=officer)
        seqs += [r["seq"] for r in response.json()["records"]]
        url = _next(response)
    assert seqs == sorted(set(seqs)) and len(seqs) == total


def test_integers_past_the_database_range_are_refused_not_a_500(client, ctx) -> None:
    """Found by schemathesis: `after_seq` beyond a 64-bit integer reached SQLite (OverflowError,
    500); so could the signed image URL's key version `k`."""
    officer = auth(make_key(ctx, Role.COMPLIANCE))
    huge = str(2**70)
    r = client.get("/v1/lineage", params={"after_seq": huge}, headers=officer)
    assert (r.status_code, r.headers["content-type"]) == (422, "application/problem+json")
    r = client.get("/v1/images/d/a", params={"k": huge, "s": "0" * 64})
    assert (r.status_code, r.headers["content-type"]) == (422, "application/problem+json")
