"""schemathesis against the OpenAPI document, in process: every operation, with a key of every
role (and no key), generated requests checked for no 5xx, answers that match the declared status
codes, media types and schemas, and problem+json on every error. Bounded: a few examples per
operation (SCHEMATHESIS_EXAMPLES, default 4), one app and database for the whole run."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import hypothesis
import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import AcceptedNegativeData
from schemathesis.core.parameters import ParameterLocation
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)

from gateway.core.models import Role
from gateway.main import create_app
from gateway.pipeline import NotBuiltRedactor
from tests.conftest import DATASET_SPEC
from tests.gateway.test_api import auth, make_key

pytestmark = [pytest.mark.db, pytest.mark.integration]
EXAMPLES = int(os.environ.get("SCHEMATHESIS_EXAMPLES", "4"))
PROBLEM = "application/problem+json"
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
]


@pytest.fixture
def client(ctx, settings) -> Iterator[TestClient]:
    app = create_app(settings, ctx=ctx, redactor_factory=NotBuiltRedactor)
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


def _send(client: TestClient, case: Any, headers: dict[str, str]) -> Any:
    kwargs = case.as_transport_kwargs(base_url=str(client.base_url), headers=headers)
    data = kwargs.pop("data", None)
    if isinstance(data, bytes | str) and not kwargs.get("files"):
        kwargs["content"] = data
    elif data is not None:
        kwargs["data"] = data
    kwargs.pop("cookies", None)
    for transport_only in ("allow_redirects", "timeout", "verify", "cert", "proxies", "stream"):
        kwargs.pop(transport_only, None)
    response = client.request(**kwargs)
    response.request.read()  # a multipart body is a stream; schemathesis reads what was sent
    return response


def _problem_on_error(response: Any, where: str) -> None:
    if response.status_code >= 400:
        content_type = response.headers.get("content-type", "")
        assert content_type == PROBLEM, f"{where}: {response.status_code} as {content_type}"
        body = response.json()
        assert body["status"] == response.status_code and body["code"], where


def _body_negated(case: Any) -> bool:
    """Whether only the body was made invalid: an invalid query or header value is often a valid
    string on the wire (`action=false`, `entity_id=`), a false alarm for negative_data_rejection."""
    negated = {
        location
        for location, info in (case.meta.components if case.meta else {}).items()
        if info.mode is GenerationMode.NEGATIVE
    }
    return negated == {ParameterLocation.BODY} and case.operation.method.upper() != "GET"


def _real(exc: BaseException, case: Any) -> bool:
    if isinstance(exc, BaseExceptionGroup):
        return any(_real(inner, case) for inner in exc.exceptions)
    return not isinstance(exc, AcceptedNegativeData) or _body_negated(case)


def _fuzz(operation: Any, mode: GenerationMode, send: Any, failures: list[str]) -> None:
    """Up to EXAMPLES generated requests for one operation, each sent with every key."""
    where = f"{operation.method.upper()} {operation.path} ({mode.value})"
    checks = CHECKS + ([negative_data_rejection] if mode is GenerationMode.NEGATIVE else [])

    @hypothesis.settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
        phases=[hypothesis.Phase.explicit, hypothesis.Phase.generate],
    )
    @given(case=operation.as_strategy(generation_mode=mode))
    def run(case: Any) -> None:
        for name, response in send(case):
            try:
                case.validate_response(response, checks=checks)
                _problem_on_error(response, where)
            except (Exception, BaseExceptionGroup) as exc:  # schemathesis's, and problem+json
                if not _real(exc, case):
                    continue
                failures.append(f"{where} as {name}: {_first_line(exc)}")
                raise

    try:
        run()
    except hypothesis.errors.Unsatisfiable:
        assert mode is GenerationMode.NEGATIVE, where  # no input that could be made invalid
    except (Exception, BaseExceptionGroup) as exc:  # recorded above, unless raised elsewhere
        if not any(f.startswith(f"{where} as ") for f in failures):
            failures.append(f"{where}: {_first_line(exc)}")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    lines = [line.strip("- |") for line in text.splitlines() if line.strip("- |")]
    reason = next((line for line in lines if line.startswith("ST") or "!=" in line), lines[0])
    curl = next((line for line in lines if line.startswith("curl ")), "")
    return f"{type(exc).__name__}: {reason} {curl}".strip()


def test_every_operation_answers_what_the_document_says(client, ctx) -> None:
    admin = make_key(ctx, Role.ADMIN)
    dataset = client.post("/v1/datasets", json=DATASET_SPEC, headers=auth(admin)).json()["id"]
    keys = {"none": {}} | {role.value: auth(make_key(ctx, role)) for role in Role}
    schema = schemathesis.openapi.from_dict(client.get("/openapi.json").json())
    operations = [result.ok() for result in schema.get_all_operations()]
    only = os.environ.get("SCHEMATHESIS_ONLY")  # a path substring, to chase one finding
    operations = [o for o in operations if only is None or only in o.path]
    sent: dict[str, int] = dict.fromkeys(keys, 0)
    failures: list[str] = []

    def send(case: Any) -> Iterator[tuple[str, Any]]:
        if "dataset_ref" in (case.path_parameters or {}):
            case.path_parameters["dataset_ref"] = dataset  # reach the handler, not only 404
        for name, headers in keys.items():
            try:
                response = _send(client, case, headers)
            except (TypeError, AttributeError, ValueError):  # the client cannot even encode it
                hypothesis.reject()  # (a negated multipart part); the app never saw it
            sent[name] += 1
            yield name, response

    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            _fuzz(operation, mode, send, failures)
    print(f"schemathesis: {len(operations)} operations, requests by key: {sent}")  # noqa: T201
    assert len(operations) > 30 or only
    assert sorted(set(failures)) == [], "\n".join(sorted(set(failures)))
