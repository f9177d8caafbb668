"""Probes and metrics, unauthenticated (they say nothing about any dataset): `/health/live`
(the process answers), `/health/ready` (this process's role can do its work now) and
Prometheus `/metrics`. `/health` stays as an alias of live for older probes."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from gateway.api.views import LiveView, ReadyView
from gateway.background import Supervisor
from gateway.core.context import GatewayContext
from gateway.health import readiness
from gateway.metrics import CONTENT_TYPE, render

router = APIRouter(tags=["health"])


def _parts(request: Request) -> tuple[GatewayContext, Supervisor | None]:
    return request.app.state.ctx, request.app.state.supervisor


@router.get("/health", response_model=LiveView)
@router.get("/health/live", response_model=LiveView)
def live() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/health/ready",
    response_model=ReadyView,
    responses={503: {"model": ReadyView, "description": "not ready; checks say why"}},
)
def ready(request: Request) -> JSONResponse:
    ctx, supervisor = _parts(request)
    report = readiness(ctx.engine, ctx.store, supervisor)
    body: dict[str, Any] = {
        "status": "ready" if report.ready else "not-ready",
        "role": request.app.state.role,
        "checks": report.checks,
        "advisory": report.advisory,
    }
    return JSONResponse(body, status_code=200 if report.ready else 503)


@router.get(
    "/metrics",
    response_class=Response,
    responses={
        200: {
            "description": "Prometheus text exposition",
            "content": {"text/plain": {"schema": {"type": "string"}}},
        }
    },
)
def metrics(request: Request) -> Response:
    ctx, supervisor = _parts(request)
    statuses = supervisor.health() if supervisor is not None else []
    report = readiness(ctx.engine, ctx.store, supervisor)
    text = render(
        ctx.engine,
        now=ctx.clock(),
        loops={s.name: s.failures for s in statuses},
        ready=report.ready,
    )
    return Response(text, media_type=CONTENT_TYPE)
