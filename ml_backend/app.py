"""`create_app(settings, ctx=...)`: Label Studio's ML backend protocol over HTTP.

GET /health (and /), POST /setup, POST /predict, POST /webhook, GET /versions. Every request
needs HTTP Basic Auth (Label Studio's only scheme for ML backends), checked in constant time
before the body is read; bodies are bounded. Handlers only translate: `PreLabeller` decides.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.api.problems import install_problem_handlers
from gateway.core.context import GatewayContext
from gateway.core.errors import PROBLEM, GatewayError, InvalidRequest
from gateway.logs import request_context
from gateway.outbound import AddressPolicy
from ml_backend.calibration import CalibrationStore, project_key
from ml_backend.gateway_client import HttpGatewayImages
from ml_backend.images import GatewayImages, ImageSource
from ml_backend.mapping import LabelMapping
from ml_backend.readback import AnnotationReader, LabelStudioReader
from ml_backend.service import MODEL_CLASS, TRAIN_EVENTS, PreLabeller
from ml_backend.settings import MLBackendSettings
from ml_backend.sources.base import SourceSet
from ml_backend.sources.loading import load_sources
from redaction.policy import Limits

log = logging.getLogger(__name__)


class MissingCredentials(GatewayError):
    code, status, title = "ml-backend-credentials", 500, "ML backend has no credentials"


class MissingConfiguration(GatewayError):
    code, status, title = "ml-backend-configuration", 500, "ML backend is not configured"


class SetupRequest(BaseModel):
    """Label Studio's /setup body. `access_token` and `hostname` are deliberately not fields:
    the token is never read, kept or logged."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)
    project: str | int
    label_config: str | None = Field(None, alias="schema")
    # Label Studio 1.23's UI (Settings -> Model -> Connect) keeps its free-text "extra params"
    # box as a string and sends `"extra_params": ""` when it is empty; the SDK sends null or {}.
    # The backend uses none of them, so any of these shapes connects.
    extra_params: dict[str, Any] | str | None = None


class PredictRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")
    tasks: list[dict[str, Any]]
    project: str | int | None = None
    label_config: str = ""
    params: dict[str, Any] | None = None


class WebhookRequest(BaseModel):
    model_config = ConfigDict(extra="allow")
    action: str


def create_app(
    settings: MLBackendSettings,
    *,
    ctx: GatewayContext | None = None,
    sources: SourceSet | None = None,
    annotations: AnnotationReader | None = None,
) -> FastAPI:
    """The ML backend. Models load at start-up (or come in as `sources`), never in /setup.

    Images come over HTTP from `settings.gateway_url` with the backend's ml-role key when it
    is set; otherwise in-process from `ctx` (the embedded mode)."""
    credentials = settings.credentials()
    if credentials is None:
        raise MissingCredentials(
            "set GATEWAY_ML_BASIC_AUTH_USER and GATEWAY_ML_BASIC_AUTH_PASSWORD (or _FILE): "
            "Label Studio must authenticate to the ML backend"
        )
    image_source(settings, ctx=ctx).close()  # configuration errors surface before serving

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        loaded = sources if sources is not None else load_sources(settings)
        prelabeller = build_prelabeller(settings, ctx=ctx, sources=loaded)
        prelabeller.annotations = annotations or annotation_reader(settings)
        app.state.prelabeller = prelabeller
        log.info("ML backend ready: %s", loaded.describe())
        try:
            yield
        finally:
            prelabeller.images.close()
            if prelabeller.annotations is not None:
                prelabeller.annotations.close()

    app = FastAPI(title="Privacy Gateway ML backend", version="0.1.0", lifespan=lifespan)
    app.add_middleware(
        GuardMiddleware, credentials=credentials, max_body=settings.max_request_bytes
    )
    app.middleware("http")(request_context)  # request ids and one JSON line a request
    install_problem_handlers(
        app,
        log=log,
        schema_message="the request does not match Label Studio's ML protocol",
        echo_values=False,  # the requests carry task data
    )
    _routes(app, settings)
    return app


def build_prelabeller(
    settings: MLBackendSettings, *, ctx: GatewayContext | None, sources: SourceSet
) -> PreLabeller:
    state = settings.state_dir or (ctx.settings.data_dir / "ml_backend" if ctx else None)
    if state is None:
        raise MissingConfiguration("set GATEWAY_ML_STATE_DIR (where calibration is kept)")
    return PreLabeller(
        sources=sources,
        images=image_source(settings, ctx=ctx),
        mapping=LabelMapping.load(settings.label_map_file),
        calibration=CalibrationStore(state / "calibration"),
        budget_seconds=settings.predict_budget_seconds,
    )


def annotation_reader(settings: MLBackendSettings) -> AnnotationReader | None:
    """Label Studio's API, where `fit` reads annotations back (None: fit learns nothing)."""
    token = settings.label_studio_token_value()
    if settings.label_studio_url is None or token is None:
        log.warning("GATEWAY_ML_LABEL_STUDIO_URL/_TOKEN unset: fit will not learn from webhooks")
        return None
    policy = AddressPolicy(allow_local_addresses=settings.label_studio_allow_local_addresses)
    return LabelStudioReader(settings.label_studio_url, token, policy=policy)


def image_source(settings: MLBackendSettings, *, ctx: GatewayContext | None) -> ImageSource:
    """HTTP with the backend's own ml-role key when a gateway URL is set, else in-process."""
    limits = Limits(max_bytes=settings.max_image_bytes, max_pixels=settings.max_image_pixels)
    if settings.gateway_url is not None:
        key = settings.gateway_key()
        if key is None or settings.region is None:
            raise MissingConfiguration(
                "with GATEWAY_ML_GATEWAY_URL set, also set GATEWAY_ML_GATEWAY_API_KEY (or _FILE), "
                "an ml-role key, and GATEWAY_ML_REGION, the region this backend runs in"
            )
        return HttpGatewayImages(
            settings.gateway_url,
            api_key=key,
            region=settings.region,
            limits=limits,
            policy=AddressPolicy(allow_local_addresses=settings.gateway_allow_local_addresses),
            timeout_seconds=settings.gateway_timeout_seconds,
        )
    if ctx is None:
        raise MissingConfiguration(
            "set GATEWAY_ML_GATEWAY_URL and an ml-role GATEWAY_ML_GATEWAY_API_KEY "
            "(or run embedded, with the gateway's own settings)"
        )
    return GatewayImages(ctx, region=settings.region or ctx.settings.region, limits=limits)


def _routes(app: FastAPI, settings: MLBackendSettings) -> None:
    def labeller(request: Request) -> PreLabeller:
        prelabeller: PreLabeller = request.app.state.prelabeller
        return prelabeller

    @app.get("/health")
    @app.get("/")
    async def health(request: Request) -> dict[str, Any]:
        # async: answers on the event loop even while /predict holds every worker thread
        p = labeller(request)
        return {
            "status": "UP",
            "model_class": MODEL_CLASS,
            "model_version": p.base_version,
            "sources": p.sources.describe(),
        }

    @app.post("/setup")
    def setup(body: SetupRequest, request: Request) -> dict[str, str]:
        version = labeller(request).setup(project=body.project, label_config=body.label_config)
        return {"model_version": version}

    @app.post("/predict")
    def predict(body: PredictRequest, request: Request) -> dict[str, Any]:
        if len(body.tasks) > settings.max_tasks_per_request:
            raise InvalidRequest(
                f"at most {settings.max_tasks_per_request} tasks per request",
                tasks=len(body.tasks),
            )
        context = (body.params or {}).get("context")
        if context is not None and not isinstance(context, dict):
            raise InvalidRequest("params.context must be an object or null")
        results = labeller(request).predict(
            body.tasks, project=body.project, label_config=body.label_config, context=context
        )
        return {"results": results}

    @app.post("/webhook")
    def webhook(body: WebhookRequest, request: Request) -> JSONResponse:
        if body.action not in TRAIN_EVENTS:
            return JSONResponse({"status": "Unknown event"}, status_code=200)
        try:
            result = labeller(request).fit(body.action, body.model_dump())
        except ValueError as exc:
            raise InvalidRequest(str(exc), action=body.action) from exc
        return JSONResponse({"status": "ok", "result": result}, status_code=201)

    @app.get("/versions")
    def versions(request: Request, project: str | None = None) -> dict[str, list[str]]:
        p = labeller(request)
        found = [p.base_version]
        key = project_key(project) if project else None
        if key is not None and p.model_version(key) != p.base_version:
            found.append(p.model_version(key))
        return {"versions": found}


# --------------------------------------------------------------------------- the guard


def basic_auth_ok(header: bytes | None, *, user: str, password: str) -> bool:
    """Constant-time comparison of both parts (no early exit on the user name)."""
    if not header or not header[:6].lower() == b"basic ":
        return False
    try:
        decoded = base64.b64decode(header[6:].strip(), validate=True)
    except (binascii.Error, ValueError):
        return False
    given_user, sep, given_password = decoded.partition(b":")
    user_ok = hmac.compare_digest(given_user, user.encode())
    password_ok = hmac.compare_digest(given_password, password.encode())
    return bool(sep) and user_ok and password_ok


class GuardMiddleware:
    """Authenticate first, then read at most `max_body` bytes (replayed to the app)."""

    def __init__(self, app: ASGIApp, *, credentials: tuple[str, str], max_body: int) -> None:
        self.app = app
        self.user, self.password = credentials
        self.max_body = max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        if not basic_auth_ok(headers.get(b"authorization"), user=self.user, password=self.password):
            await _problem(
                send,
                401,
                "not-authenticated",
                "HTTP Basic Auth required",
                extra_headers=[(b"www-authenticate", b'Basic realm="ml-backend"')],
            )
            return
        declared = headers.get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_body):
            await _problem(
                send, 413, "request-too-large", f"bodies are limited to {self.max_body} bytes"
            )
            return
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body:
                await _problem(
                    send, 413, "request-too-large", f"bodies are limited to {self.max_body} bytes"
                )
                return
            chunks.append(chunk)
            more = bool(message.get("more_body", False))
        body = b"".join(chunks)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


async def _problem(
    send: Send,
    status: int,
    code: str,
    detail: str,
    *,
    extra_headers: list[tuple[bytes, bytes]] | None = None,
) -> None:
    payload = json.dumps(
        {
            "type": f"https://privacy-gateway.dev/problems/{code}",
            "title": detail,
            "status": status,
            "detail": detail,
            "code": code,
        }
    ).encode()
    headers = [
        (b"content-type", PROBLEM.encode()),
        (b"content-length", str(len(payload)).encode()),
        *(extra_headers or []),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": payload})
