"""Structured JSON logs, one object a line on stderr, with the request id of the request that
caused them. Messages and fields name codes, ids and counts, never keys, tokens or task data;
an exception is logged by its type and traceback frames, its message scrubbed of anything
that looks like a credential (defence in depth: the call sites should not put one there)."""

from __future__ import annotations

import contextvars
import json
import logging
import re
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # annotations only: the CLI configures logging without loading the web stack
    from starlette.requests import Request
    from starlette.responses import Response

REQUEST_ID: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)
_STANDARD = set(vars(logging.makeLogRecord({}))) | {
    "message",
    "asctime",
    "taskName",
    "color_message",  # uvicorn's ANSI copy of msg
}
_SECRETISH = re.compile(
    r"(?i)(bearer\s+|token[=:]\s*|key[=:]\s*|password[=:]\s*|sig(nature)?=)[^\s&\"',]+"
)
QUIET = ("httpx", "httpcore", "urllib3", "multipart", "uvicorn.access", "PIL", "alembic")


def scrub(text: str) -> str:
    return _SECRETISH.sub(lambda m: f"{m.group(1)}[redacted]", text)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "msg": scrub(record.getMessage()),
        }
        request_id = REQUEST_ID.get()
        if request_id:
            entry["request_id"] = request_id
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                entry[key] = value if isinstance(value, int | float | bool) else scrub(str(value))
        if record.exc_info and record.exc_info[1] is not None:
            entry["error"] = type(record.exc_info[1]).__name__
            entry["traceback"] = scrub(self.formatException(record.exc_info))
        return json.dumps(entry, default=str)


def configure_logging(level: str = "INFO", *, stream: Any = None) -> None:
    """Install the JSON handler on the root logger (idempotent); quiet chatty libraries,
    whose INFO lines carry full URLs (signed image links) and request bodies."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "_gateway_json", False):
            root.removeHandler(handler)
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter())
    handler._gateway_json = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level.upper())
    for name in QUIET:
        logging.getLogger(name).setLevel(logging.WARNING)
    for name in ("uvicorn", "uvicorn.error"):  # uvicorn's own lines go through ours
        uv = logging.getLogger(name)
        uv.handlers.clear()
        uv.propagate = True


UVICORN_LOG_CONFIG: dict[str, Any] = {"version": 1, "disable_existing_loggers": False}
"""Passed to uvicorn so it leaves our logging alone (its default config drops INFO)."""

http_log = logging.getLogger("gateway.http")


async def request_context(
    request: Request, call_next: Callable[[Request], Awaitable[Response]]
) -> Response:
    """Middleware: a request id (the caller's X-Request-ID if sane, else a new one) for every
    log line of the request, echoed in the response; one access line without the query."""
    # deferred: the metrics (prometheus, SQLModel) only in a serving process, not the CLI's
    from gateway.metrics import HTTP

    given = request.headers.get("x-request-id", "")
    request_id = given if re.fullmatch(r"[A-Za-z0-9._-]{1,64}", given) else uuid.uuid4().hex
    token = REQUEST_ID.set(request_id)
    start = time.perf_counter()
    status = 500
    try:
        response = await call_next(request)
        status = response.status_code
        response.headers["X-Request-ID"] = request_id
        return response
    finally:
        route = request.scope.get("route")
        HTTP.labels(request.method, getattr(route, "path", "unmatched"), str(status)).inc()
        http_log.info(
            "request",
            extra={
                "method": request.method,
                "route": getattr(route, "path", "unmatched"),
                "status": status,
                "duration_ms": round((time.perf_counter() - start) * 1000, 1),
            },
        )
        REQUEST_ID.reset(token)
