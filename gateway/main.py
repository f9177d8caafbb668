"""`create_app(settings)`: the FastAPI service. No work happens at import time."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from sqlalchemy.exc import InterfaceError, OperationalError

from gateway.api import (
    apikeys,
    assets,
    datasets,
    destinations,
    health,
    images,
    ml_images,
    review,
    webhooks,
)
from gateway.api import lineage as lineage_api
from gateway.api import policies as policies_api
from gateway.api import reports as reports_api
from gateway.api import vault as vault_api
from gateway.api.contract import install_contract
from gateway.api.docs import install_offline_docs
from gateway.api.problems import install_problem_handlers
from gateway.background import Supervisor
from gateway.core.context import GatewayContext
from gateway.core.errors import PROBLEM, ServiceUnavailable
from gateway.core.settings import Settings
from gateway.http_limits import install_request_guard
from gateway.logs import request_context
from gateway.loop_watch import LoopWatch
from gateway.redaction_step import RedactorFactory
from gateway.redactor import IsolatedRedactor
from gateway.workers import background_supervisor

log = logging.getLogger(__name__)


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
        app.state.ctx, app.state.supervisor, app.state.role = context, None, settings.role
        # made on demand only (heavy imports, a process): e.g. a review pull the API triggers
        app.state.redactor_factory = redactor_factory or default_redactor_factory(context)
        if settings.broker_configured:  # workers and the scheduler are other processes
            app.state.supervisor = broker_dispatcher(context, settings).start()
        elif settings.role != "api":  # jobs and schedules, each a supervised loop
            factory = redactor_factory or default_redactor_factory(context)
            app.state.supervisor = background_supervisor(
                context, settings, redactor_factory=factory
            ).start()
        log.info("gateway started", extra={"role": settings.role, "region": settings.region})
        watch = LoopWatch().start()  # logs what blocks the loop (webhooks wait on it)
        try:
            yield
        finally:
            watch.stop()
            if app.state.supervisor is not None:
                app.state.supervisor.stop()
            if ctx is None:
                context.close()

    app = FastAPI(title="Label Studio Privacy Gateway", version="0.1.0", lifespan=lifespan)
    _install_error_handlers(app)
    install_contract(app)  # 401/404/405 as problem+json, OpenAPI security and problems
    install_request_guard(app, settings)  # credentials present and body limits, before any body
    app.middleware("http")(request_context)
    install_offline_docs(app)  # Swagger UI from a package, no CDN
    for module in (health, datasets, assets, apikeys):
        app.include_router(module.router)
    app.include_router(lineage_api.router)
    app.include_router(reports_api.router)  # governance reports (compliance role)
    app.include_router(policies_api.router)  # policies, retention, erasure (admin)
    app.include_router(vault_api.router)  # re-identification vault (admin, purpose)
    # Label Studio sync, and the human review of redaction (admin, compliance)
    for ls_module in (destinations, images, webhooks, review):
        app.include_router(ls_module.router)
    app.include_router(ml_images.router)  # redacted renditions for the ML backend (ml role)

    return app


def broker_dispatcher(ctx: GatewayContext, settings: Settings) -> Supervisor:
    """With a broker, the API runs no jobs and no periodic work: it only hands committed jobs
    to the broker when woken by an upload (the scheduler's relay catches what it misses)."""
    # deferred: Celery only with a broker (GATEWAY_BROKER_URL)
    from gateway.scaleout.broker import celery_app
    from gateway.scaleout.relay import CeleryPublisher, Dispatcher

    return Supervisor().add(Dispatcher(ctx, CeleryPublisher(celery_app(settings))))


def default_redactor_factory(ctx: GatewayContext) -> RedactorFactory:
    return lambda: IsolatedRedactor(ctx.settings)


def _install_error_handlers(app: FastAPI) -> None:
    install_problem_handlers(
        app, log=log, schema_message="the request does not match the schema", echo_values=True
    )

    async def outage(_: Request, exc: Exception) -> JSONResponse:
        what = "storage" if isinstance(exc, OSError) else "database"
        log.warning("request failed: %s unavailable (%s)", what, type(exc).__name__)
        problem = ServiceUnavailable(f"the {what} is unavailable; nothing was accepted, retry")
        headers = {"Retry-After": "10"}
        return JSONResponse(problem.problem(), status_code=503, media_type=PROBLEM, headers=headers)

    for kind in (OSError, OperationalError, InterfaceError):
        app.add_exception_handler(kind, outage)
