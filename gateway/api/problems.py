"""The one installer of the problem+json exception handlers, used by the gateway's app and by the
ML backend's: a GatewayError answers its own problem; a request that does not match the schema
a 422 that lists the offending fields; anything else a 500 that says only that the operator's
log has the details."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from gateway.core.errors import PROBLEM, GatewayError, InvalidRequest


def install_problem_handlers(
    app: FastAPI, *, log: logging.Logger, schema_message: str, echo_values: bool
) -> None:
    """`echo_values=False` (the ML backend, whose requests carry task data): the 422 names the
    fields without pydantic's messages, which may quote values, and the log line of an
    unexpected error names its type only (no traceback, whose frames may hold the payload)."""

    @app.exception_handler(GatewayError)
    async def gateway_error(_: Request, exc: GatewayError) -> JSONResponse:
        return JSONResponse(exc.problem(), status_code=exc.status, media_type=PROBLEM)

    @app.exception_handler(RequestValidationError)
    async def validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [_field_error(e, echo_values=echo_values) for e in exc.errors()]
        problem = InvalidRequest(schema_message, errors=errors)
        return JSONResponse(problem.problem(), status_code=422, media_type=PROBLEM)

    @app.exception_handler(Exception)
    async def unexpected(_: Request, exc: Exception) -> JSONResponse:
        if echo_values:
            log.exception("unhandled error", exc_info=exc)
        else:
            log.error("unhandled error: %s", type(exc).__name__)
        body = GatewayError("internal error; the operator's log has the details").problem()
        return JSONResponse(body, status_code=500, media_type=PROBLEM)


def _field_error(error: Any, *, echo_values: bool) -> dict[str, Any]:
    if echo_values:
        loc = list(error.get("loc", ()))
        return {"loc": loc, "msg": error.get("msg", ""), "type": error.get("type", "")}
    return {"loc": [str(p) for p in error.get("loc", ())], "type": error.get("type", "")}
