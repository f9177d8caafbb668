"""`create_app(settings)`: the FastAPI service. No work happens at import time."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from gateway.api import apikeys, assets, datasets
from gateway.context import GatewayContext
from gateway.errors import GatewayError, InvalidRequest
from gateway.http_limits import install_request_guard
from gateway.policy.scheduler import RetentionScheduler
from gateway.settings import Settings
from gateway.workers import BackgroundWorkers, RedactorFactory

log = logging.getLogger(__name__)
PROBLEM = "application/problem+json"


def create_app(
    settings: Settings,
    *,
    redactor_factory: RedactorFactory | None = None,
    ctx: GatewayContext | None = None,
) -> FastAPI:
    """Build the service. `redactor_factory` defaults to the real isolated redaction engine."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        context = ctx or GatewayContext.open(settings)
        factory = redactor_factory or default_redactor_factory(context)
        workers = BackgroundWorkers(context, redactor_factory=factory, count=settings.workers)
        app.state.ctx, app.state.workers = context, workers
        workers.start()
        retention = RetentionScheduler(
            context, interval_seconds=settings.retention_interval_seconds
        )
        retention.start()
        from gateway.lineage.checkpointer import Checkpointer  # signed tree heads at intervals

        checkpointer = Checkpointer(context).start()
        from gateway.labelstudio.reconcile import AnnotationReconciler  # lost webhooks

        app.state.annotation_reconciler = reconciler = AnnotationReconciler(
            context, interval_seconds=settings.annotation_pull_interval_seconds
        ).start()
        try:
            yield
        finally:
            reconciler.stop()
            checkpointer.stop()
            retention.stop()
            workers.stop()
            if ctx is None:
                context.close()

    app = FastAPI(title="Label Studio Privacy Gateway", version="0.1.0", lifespan=lifespan)
    _install_error_handlers(app)
    install_request_guard(app, settings)  # credentials present and body limits, before any body
    for module in (datasets, assets, apikeys):
        app.include_router(module.router)
    from gateway.api import lineage as lineage_api

    app.include_router(lineage_api.router)
    from gateway.api import reports as reports_api  # governance reports (compliance role)

    app.include_router(reports_api.router)
    from gateway.api import policies as policies_api  # policies, retention, erasure (admin)

    app.include_router(policies_api.router)
    from gateway.api import vault as vault_api  # re-identification vault (admin, purpose)

    app.include_router(vault_api.router)
    from gateway.api import destinations, images, webhooks  # Label Studio sync

    for ls_module in (destinations, images, webhooks):
        app.include_router(ls_module.router)
    from gateway.api import ml_images  # redacted renditions for the ML backend (ml role)

    app.include_router(ml_images.router)

    @app.get("/health", tags=["health"])
    def health() -> dict[str, str]:
        return {"status": "ok"}

    return app


def default_redactor_factory(ctx: GatewayContext) -> RedactorFactory:
    from gateway.redactor import IsolatedRedactor  # heavy imports only when serving

    return lambda: IsolatedRedactor(ctx.settings)


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(GatewayError)
    async def gateway_error(_: Request, exc: GatewayError) -> JSONResponse:
        return JSONResponse(exc.problem(), status_code=exc.status, media_type=PROBLEM)

    @app.exception_handler(RequestValidationError)
    async def validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")}
            for e in exc.errors()
        ]
        problem = InvalidRequest("the request does not match the schema", errors=errors)
        return JSONResponse(problem.problem(), status_code=422, media_type=PROBLEM)

    @app.exception_handler(Exception)
    async def unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error", exc_info=exc)
        body = GatewayError("internal error; the operator's log has the details").problem()
        return JSONResponse(body, status_code=500, media_type=PROBLEM)
