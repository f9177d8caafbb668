"""The OpenAPI document as a contract: every error is RFC 9457 problem+json, declared on every
operation; the API key is a declared security scheme (Bearer, or the X-API-Key header) and a 401
says how to authenticate (`WWW-Authenticate`); unknown paths (404) and methods (405) answer
problem+json too, not FastAPI's plain JSON."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from gateway.core.errors import PROBLEM, GatewayError, NotAuthenticated

WWW_AUTHENTICATE = 'Bearer realm="privacy-gateway"'
_AUTH_HEADERS = {"authorization", "x-api-key"}

PROBLEM_SCHEMA: dict[str, Any] = {
    "title": "Problem",
    "description": "RFC 9457 problem details; `code` is stable, `detail` says what to do.",
    "type": "object",
    "required": ["type", "title", "status", "detail", "code"],
    "properties": {
        "type": {"type": "string", "format": "uri"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "code": {"type": "string"},
        "details": {"type": "object", "additionalProperties": True},
    },
}
SECURITY_SCHEMES: dict[str, Any] = {
    "bearerAuth": {
        "type": "http",
        "scheme": "bearer",
        "description": "an API key (`privacy-gateway api-keys create`), one role and scope",
    },
    "apiKeyHeader": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
}
_HTTP_CODES = {404: "not-found", 405: "method-not-allowed"}


class HttpProblem(GatewayError):
    """What Starlette raised itself (no route, wrong method), as a problem."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = _HTTP_CODES.get(status, f"http-{status}")
        self.title = message


def install_contract(app: FastAPI) -> None:
    """Add the 401/404/405 handlers and the contract-shaped OpenAPI document to `app`."""

    @app.exception_handler(NotAuthenticated)
    async def not_authenticated(_: Request, exc: NotAuthenticated) -> JSONResponse:
        return JSONResponse(
            exc.problem(),
            status_code=exc.status,
            media_type=PROBLEM,
            headers={"WWW-Authenticate": WWW_AUTHENTICATE},
        )

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        problem = HttpProblem(exc.status_code, str(exc.detail))
        return JSONResponse(
            problem.problem(),
            status_code=exc.status_code,
            media_type=PROBLEM,
            headers=dict(exc.headers or {}),  # 405 keeps its Allow header
        )

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = get_openapi(
                title=app.title,
                version=app.version,
                description=app.description,
                routes=app.routes,
            )
            app.openapi_schema = contract_document(document)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def contract_document(document: dict[str, Any]) -> dict[str, Any]:
    """Declare the problem responses and the security scheme on every operation."""
    components = document.setdefault("components", {})
    components.setdefault("schemas", {})["Problem"] = PROBLEM_SCHEMA
    components["securitySchemes"] = SECURITY_SCHEMES
    for operations in document.get("paths", {}).values():
        for operation in operations.values():
            _declare(operation)
    return document


def _declare(operation: dict[str, Any]) -> None:
    responses = operation.setdefault("responses", {})
    parameters = operation.get("parameters", [])
    secured = any(
        p.get("in") == "header" and p.get("name", "").lower() == "authorization" for p in parameters
    )
    if secured:
        kept = [
            p
            for p in parameters
            if not (p.get("in") == "header" and p.get("name", "").lower() in _AUTH_HEADERS)
        ]
        if kept:
            operation["parameters"] = kept
        else:
            operation.pop("parameters", None)
        operation["security"] = [{"bearerAuth": []}, {"apiKeyHeader": []}]
        responses.setdefault("401", _problem("no API key, or an unknown, expired or revoked one"))
        responses["401"].setdefault("headers", {"WWW-Authenticate": {"schema": {"type": "string"}}})
        responses.setdefault("403", _problem("the key's role or dataset scope does not allow it"))
    if "422" in responses:
        responses["422"] = _problem("the request does not match the schema")
    responses.setdefault("default", _problem("any other error"))


def _problem(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {PROBLEM: {"schema": {"$ref": "#/components/schemas/Problem"}}},
    }
