"""FastAPI dependencies: the context, a transaction per request, the authenticated key."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Header, Request
from sqlmodel import Session

from gateway.apikeys import Principal, authenticate
from gateway.background import Supervisor
from gateway.core.context import GatewayContext
from gateway.core.db import transaction
from gateway.core.errors import NotAuthenticated
from gateway.core.models import Role


# The cheap dependencies are coroutines: a plain function would wait for a worker thread, and
# a webhook must read its body before anything waits for one
# (tests/gateway/test_webhook_busy_threads.py).
async def get_context(request: Request) -> GatewayContext:
    ctx: GatewayContext = request.app.state.ctx
    return ctx


Context = Annotated[GatewayContext, Depends(get_context)]


class _NoWorkers:
    """An API-only process: the worker processes poll the job table."""

    def wake(self) -> None:
        return None

    def wake_loop(self, name: str) -> None:
        del name  # the worker processes run their loops on their own schedule


async def get_workers(request: Request) -> Supervisor | _NoWorkers:
    supervisor: Supervisor | None = request.app.state.supervisor
    return supervisor if supervisor is not None else _NoWorkers()


Workers = Annotated[Supervisor | _NoWorkers, Depends(get_workers)]


def get_session(ctx: Context) -> Iterator[Session]:
    with transaction(ctx.engine) as session:
        yield session


DbSession = Annotated[Session, Depends(get_session)]


def get_principal(
    ctx: Context,
    authorization: Annotated[str | None, Header()] = None,
    x_api_key: Annotated[str | None, Header()] = None,
) -> Principal:
    token = x_api_key
    if authorization and authorization.lower().startswith("bearer "):
        token = authorization[7:].strip()
    if not token:
        raise NotAuthenticated("send an API key as 'Authorization: Bearer <key>' or 'X-API-Key'")
    with transaction(ctx.engine) as session:
        return authenticate(session, token, pepper=ctx.keys.api_key_pepper(), now=ctx.clock())


CurrentKey = Annotated[Principal, Depends(get_principal)]


def role_checker(*roles: Role) -> object:
    def check(principal: CurrentKey) -> Principal:
        principal.require_role(*roles)
        return principal

    return Depends(check)
