"""FastAPI dependencies: the context, a transaction per request, the authenticated key."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Header, Request
from sqlmodel import Session

from gateway.apikeys import Principal, authenticate
from gateway.context import GatewayContext
from gateway.db import transaction
from gateway.errors import NotAuthenticated
from gateway.models import Role
from gateway.workers import BackgroundWorkers


def get_context(request: Request) -> GatewayContext:
    ctx: GatewayContext = request.app.state.ctx
    return ctx


Context = Annotated[GatewayContext, Depends(get_context)]


def get_workers(request: Request) -> BackgroundWorkers:
    workers: BackgroundWorkers = request.app.state.workers
    return workers


Workers = Annotated[BackgroundWorkers, Depends(get_workers)]


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
