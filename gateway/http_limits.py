"""An ASGI guard in front of every route: no credential, no body; no body past its limit.

FastAPI parses a request body (and Starlette spools an upload to disk) before any dependency
runs, so a key check in a dependency comes after the work. This guard runs first, on the
request head only:

- a route that needs an API key (everything under `/v1/` except the two routes below) is
  answered 401 when neither `Authorization: Bearer ...` nor `X-API-Key` is present; the
  Label Studio webhook needs its secret header present. Whether the credential is *valid* is
  still the route's business (the upload route checks the key before it reads the form);
- every route has a body limit: a declared `Content-Length` over it is answered 413 at once,
  and a body without one (chunked) is counted as it arrives and cut off at the limit.

Signed image URLs (`/v1/images/...`, `/v1/review-images/...`) carry their credential in the
query; `/health` and the OpenAPI pages are public. Anything new under `/v1/` needs a key unless
listed here.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from enum import Enum

from starlette.applications import Starlette
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.api.contract import WWW_AUTHENTICATE
from gateway.core.errors import PROBLEM, GatewayError, NotAuthenticated
from gateway.core.settings import Settings

MIB = 1024 * 1024
DEFAULT_BODY_LIMIT = 1 * MIB  # JSON documents: datasets, policies, keys, erasure requests
WEBHOOK_BODY_LIMIT = 1 * MIB  # one annotation event; Label Studio sends far less


class PayloadTooLarge(GatewayError):
    code, status, title = "payload-too-large", 413, "Request body too large"


class MalformedLength(GatewayError):
    code, status, title = "invalid-request", 400, "Invalid Content-Length"


class Credential(Enum):
    NONE = "none"
    API_KEY = "api-key"
    WEBHOOK_SECRET = "webhook-secret"  # noqa: S105  (the name of a kind of credential)


@dataclass(frozen=True, slots=True)
class RouteRule:
    method: str | None  # None: any method
    path: re.Pattern[str]
    credential: Credential
    max_body: int


def route_rules(settings: Settings) -> tuple[RouteRule, ...]:
    """First match wins; the last rules are the defaults."""
    return (
        RouteRule(
            "POST",
            re.compile(r"^/v1/datasets/[^/]+/assets/?$"),
            Credential.API_KEY,
            settings.max_upload_request_bytes,
        ),
        RouteRule(
            None,
            re.compile(r"^/v1/webhooks/labelstudio/"),
            Credential.WEBHOOK_SECRET,
            WEBHOOK_BODY_LIMIT,
        ),
        RouteRule(None, re.compile(r"^/v1/images/"), Credential.NONE, DEFAULT_BODY_LIMIT),
        # signed review URLs (gateway.review.images): the HMAC in the query is the credential
        RouteRule(None, re.compile(r"^/v1/review-images/"), Credential.NONE, DEFAULT_BODY_LIMIT),
        RouteRule(None, re.compile(r"^/v1(/|$)"), Credential.API_KEY, DEFAULT_BODY_LIMIT),
        RouteRule(None, re.compile(r""), Credential.NONE, DEFAULT_BODY_LIMIT),
    )


def match_rule(rules: tuple[RouteRule, ...], method: str, path: str) -> RouteRule:
    for rule in rules:
        if (rule.method is None or rule.method == method) and rule.path.match(path):
            return rule
    raise LookupError(f"no rule for {method} {path}")  # the last rule matches everything


def missing_credential(rule: RouteRule, headers: Headers) -> GatewayError | None:
    """The error to answer when the credential the route needs is not even present."""
    if rule.credential is Credential.API_KEY:
        bearer = headers.get("authorization", "")
        if bearer.lower().startswith("bearer ") and bearer[7:].strip():
            return None
        if headers.get("x-api-key", "").strip():
            return None
        return NotAuthenticated("send an API key as 'Authorization: Bearer <key>' or 'X-API-Key'")
    if rule.credential is Credential.WEBHOOK_SECRET:
        if headers.get("x-gateway-webhook-secret", "").strip():
            return None
        return NotAuthenticated("the webhook secret header is missing")
    return None


def declared_too_large(rule: RouteRule, headers: Headers) -> GatewayError | None:
    raw = headers.get("content-length")
    if raw is None:
        return None
    if not raw.isdigit():
        return MalformedLength("Content-Length must be a number of bytes")
    if int(raw) > rule.max_body:
        return _too_large(rule)
    return None


def _too_large(rule: RouteRule) -> PayloadTooLarge:
    return PayloadTooLarge(
        f"the request body is larger than this route accepts ({rule.max_body} bytes)",
        limit_bytes=rule.max_body,
    )


class _BodyOverLimit(Exception):
    """Raised from `receive` inside the app; the guard answers 413 instead of the app."""


class RequestGuard:
    """Pure ASGI middleware (no request object, nothing read before the checks)."""

    def __init__(self, app: ASGIApp, *, rules: tuple[RouteRule, ...]) -> None:
        self.app = app
        self.rules = rules

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rule = match_rule(self.rules, scope["method"], scope["path"])
        headers = Headers(scope=scope)
        refusal = missing_credential(rule, headers) or declared_too_large(rule, headers)
        if refusal is not None:
            await send_problem(send, refusal)
            return
        await _CountedCall(self.app, rule).run(scope, receive, send)


class _CountedCall:
    """One request whose body is counted; past the limit the app's answer is replaced by 413."""

    def __init__(self, app: ASGIApp, rule: RouteRule) -> None:
        self.app, self.rule = app, rule
        self.received = 0
        self.over = False
        self.started = False

    async def run(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def counted_receive() -> Message:
            message = await receive()
            if message["type"] == "http.request":
                self.received += len(message.get("body", b""))
                if self.received > self.rule.max_body:
                    self.over = True
                    raise _BodyOverLimit
            return message

        async def guarded_send(message: Message) -> None:
            if self.over:  # whatever the app made of the interrupted body, the answer is 413
                if not self.started:
                    self.started = True
                    await send_problem(send, _too_large(self.rule))
                return
            self.started = self.started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted_receive, guarded_send)
        except _BodyOverLimit:
            if not self.started:
                self.started = True
                await send_problem(send, _too_large(self.rule))


async def send_problem(send: Send, error: GatewayError) -> None:
    body = json.dumps(error.problem()).encode()
    headers = [
        (b"content-type", PROBLEM.encode()),
        (b"content-length", str(len(body)).encode()),
        (b"connection", b"close"),
    ]
    if isinstance(error, NotAuthenticated):  # RFC 9110: a 401 says how to authenticate
        headers.append((b"www-authenticate", WWW_AUTHENTICATE.encode()))
    await send({"type": "http.response.start", "status": error.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def install_request_guard(app: Starlette, settings: Settings) -> None:
    """Register the guard (called once from `create_app`)."""
    app.add_middleware(RequestGuard, rules=route_rules(settings))
