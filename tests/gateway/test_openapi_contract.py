"""The OpenAPI document is a contract: declared security and problem+json responses on every
operation; 401s say how to authenticate; 404 and 405 are problem+json too."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from gateway.main import create_app
from gateway.pipeline import NotBuiltRedactor

pytestmark = pytest.mark.db
PROBLEM = "application/problem+json"
PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}
OWN_AUTHENTICATION = {  # not an API key: Label Studio's browser and webhooks hold none
    "GET /v1/images/{destination_id}/{asset_id}",  # a signed, expiring URL (k, s)
    "POST /v1/webhooks/labelstudio/{destination_id}",  # the destination's webhook secret
    "GET /v1/review-images/{destination_id}/{item_id}",  # a signed review URL (k, s)
}


@pytest.fixture
def client(ctx, settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings, ctx=ctx, redactor_factory=NotBuiltRedactor)) as c:
        yield c


def test_every_operation_declares_problems_and_secured_ones_the_scheme(client) -> None:
    document = client.get("/openapi.json").json()
    schemes = document["components"]["securitySchemes"]
    assert schemes["bearerAuth"] == {**schemes["bearerAuth"], "type": "http", "scheme": "bearer"}
    operations = [
        (path, method, op) for path, ops in document["paths"].items() for method, op in ops.items()
    ]
    assert len(operations) > 30
    secured = unsecured = 0
    for path, method, op in operations:
        where = f"{method.upper()} {path}"
        default = op["responses"]["default"]["content"][PROBLEM]["schema"]
        assert default == PROBLEM_REF, where
        if "422" in op["responses"]:
            assert PROBLEM in op["responses"]["422"]["content"], where
        headers = [p["name"].lower() for p in op.get("parameters", []) if p["in"] == "header"]
        assert "authorization" not in headers, f"{where}: the key is a scheme, not a parameter"
        if path.startswith("/health") or path == "/metrics" or where in OWN_AUTHENTICATION:
            assert "security" not in op, where  # probes and the scrape take no key
            unsecured += 1
            continue
        secured += 1
        assert op["security"] == [{"bearerAuth": []}, {"apiKeyHeader": []}], where
        assert "WWW-Authenticate" in op["responses"]["401"]["headers"], where
        assert op["responses"]["403"]["content"][PROBLEM]["schema"] == PROBLEM_REF, where
    assert (
        unsecured == len(OWN_AUTHENTICATION) + 4
    )  # /health, /health/live, /health/ready, /metrics
    assert secured == len(operations) - unsecured


def test_401_carries_www_authenticate_and_404_405_are_problems(client) -> None:
    anonymous = client.get("/v1/datasets")
    assert anonymous.status_code == 401
    assert anonymous.headers["www-authenticate"] == 'Bearer realm="privacy-gateway"'
    assert anonymous.headers["content-type"] == PROBLEM
    wrong_key = client.get("/v1/datasets", headers={"Authorization": "Bearer nope"})
    assert wrong_key.status_code == 401 and "www-authenticate" in wrong_key.headers

    # under /v1 a request without a key is refused before routing (it learns no paths)
    assert client.get("/v1/no-such-thing").status_code == 401
    missing = client.get("/no-such-thing")
    assert missing.status_code == 404
    assert missing.headers["content-type"] == PROBLEM
    assert missing.json()["code"] == "not-found"

    wrong_method = client.delete("/health")
    assert wrong_method.status_code == 405
    assert wrong_method.headers["content-type"] == PROBLEM
    assert wrong_method.json()["code"] == "method-not-allowed"
    assert "GET" in wrong_method.headers["allow"]


def _is_any(schema: dict[str, object]) -> bool:
    """An empty schema (`{}`) or a bare title says nothing about the body."""
    return not (set(schema) - {"title", "description"})


def test_every_operation_declares_what_its_success_answers(client) -> None:
    """Each operation has a 2xx answer whose body has a schema (not `{}`); a 204 has no body."""
    document = client.get("/openapi.json").json()
    undeclared = []
    for path, ops in document["paths"].items():
        for method, op in ops.items():
            successes = {c: r for c, r in op["responses"].items() if c.startswith("2")}
            assert successes, f"{method.upper()} {path}: no 2xx answer"
            for code, response in successes.items():
                if code == "204":
                    assert "content" not in response, f"{method.upper()} {path}"
                    continue
                schemas = [m.get("schema", {}) for m in response.get("content", {}).values()]
                if not schemas or any(_is_any(s) for s in schemas):
                    undeclared.append(f"{code} {method.upper()} {path}")
    assert undeclared == []


def test_the_review_pull_declares_its_in_process_and_its_brokered_answer(client) -> None:
    """200: the decisions made here (no broker); 202: a job for the region's worker (a
    broker), whose view the GET answers."""
    document = client.get("/openapi.json").json()
    paths = document["paths"]

    def successes(op: dict[str, Any]) -> dict[str, Any]:
        return {
            code: r["content"]["application/json"]["schema"]
            for code, r in op["responses"].items()
            if code.startswith("2")
        }

    job = {"$ref": "#/components/schemas/ReviewPullJobView"}
    assert successes(paths["/v1/datasets/{dataset_ref}/review/pull"]["post"]) == {
        "200": {"$ref": "#/components/schemas/ReviewPullView"},
        "202": job,
    }
    assert successes(paths["/v1/datasets/{dataset_ref}/review/pull/{job_id}"]["get"]) == {
        "200": job
    }
    view = document["components"]["schemas"]["ReviewPullJobView"]
    assert set(view["required"]) >= {"job_id", "state", "queue", "report"}
