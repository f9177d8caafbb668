"""Who may do what, checked in one place.

Every route declares the roles it admits and the dataset scope it acts on:

    grant: Annotated[Grant, authority(Role.ADMIN, scope=DatasetFrom.path("dataset_ref"))]

The `Authority` dependency authenticates the key, checks the role, resolves the datasets the
request acts on (from the path, an asset, a legal hold, an API key, the JSON body or the query)
and checks them against the key's scope. A handler receives a `Grant` naming those datasets and
never checks authority itself. Routes that take no API key declare `public(reason)`.

The rules:
- A key without dataset scope acts on every dataset; a scoped key only on the datasets it
  names. A dataset outside the scope answers 404, the same as a missing one (a key must not
  learn which datasets exist).
- Acts that reach every dataset or global settings (creating datasets, Label Studio
  destinations, the `default` policy, the record over every dataset) need an unscoped key: a
  scoped key gets 403.
- Only an admin key creates API keys, of any of the four roles (they have no order), but never
  broader than itself: a scoped admin names datasets inside its own scope (never none, which
  would mean every dataset), and a key that expires cannot mint one that outlives it. Key scopes
  name existing datasets by id. An admin lists and revokes only keys inside its own scope.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, ClassVar

from fastapi import Depends, Request
from fastapi.concurrency import run_in_threadpool
from sqlmodel import Session

from gateway.apikeys import Principal
from gateway.core.clock import as_utc
from gateway.core.context import GatewayContext
from gateway.core.db import transaction
from gateway.core.errors import Forbidden, InvalidRequest, NotFound
from gateway.core.models import ApiKey, Asset, Dataset, Role
from gateway.datasets import get_dataset
from gateway.deps import Context, CurrentKey
from gateway.lineage import Actor
from gateway.policy.tables import LegalHold

# Which role may create keys of which role. The four roles have no order: only an admin key
# creates keys (of any role), and never with a wider scope or a later expiry than its own.
MAY_CREATE: Mapping[Role, frozenset[Role]] = {
    Role.ADMIN: frozenset(Role),
    Role.INGEST: frozenset(),
    Role.COMPLIANCE: frozenset(),
    Role.ML: frozenset(),
}


class ScopeKind(StrEnum):
    NONE = "none"  # acts on no dataset's data (catalogues, signing keys, validation)
    GLOBAL = "global"  # acts on every dataset or on global settings: unscoped keys only
    OWN = "own"  # acts on the key's own datasets (lists filtered, runs limited to them)
    PATH = "path"  # a dataset named (id or name) by a path parameter
    ASSET = "asset"  # the dataset of the asset a path parameter names
    HOLD = "hold"  # the dataset of the legal hold a path parameter names
    API_KEY = "api-key"  # the scope of the API key a path parameter names
    BODY = "body"  # a dataset named by a field of the JSON body
    QUERY = "query"  # a dataset named by a query parameter
    NEW_KEY = "new-key"  # the scope, role and expiry of the key a JSON body asks to create


@dataclass(frozen=True, slots=True)
class DatasetFrom:
    """Where a route finds the dataset(s) it acts on."""

    kind: ScopeKind
    param: str = ""
    when_absent: DatasetFrom | None = None

    none: ClassVar[DatasetFrom]
    global_: ClassVar[DatasetFrom]
    own: ClassVar[DatasetFrom]

    @classmethod
    def path(cls, param: str) -> DatasetFrom:
        return cls(ScopeKind.PATH, param)

    @classmethod
    def asset(cls, param: str = "asset_id") -> DatasetFrom:
        return cls(ScopeKind.ASSET, param)

    @classmethod
    def hold(cls, param: str = "hold_id") -> DatasetFrom:
        return cls(ScopeKind.HOLD, param)

    @classmethod
    def api_key(cls, param: str = "key_id") -> DatasetFrom:
        return cls(ScopeKind.API_KEY, param)

    @classmethod
    def body(cls, field: str, *, when_absent: DatasetFrom | None = None) -> DatasetFrom:
        return cls(ScopeKind.BODY, field, when_absent)

    @classmethod
    def query(cls, param: str, *, when_absent: DatasetFrom | None = None) -> DatasetFrom:
        return cls(ScopeKind.QUERY, param, when_absent)

    @classmethod
    def new_key(cls) -> DatasetFrom:
        return cls(ScopeKind.NEW_KEY, "dataset_scope")

    @property
    def reads_body(self) -> bool:
        return self.kind in (ScopeKind.BODY, ScopeKind.NEW_KEY)


DatasetFrom.none = DatasetFrom(ScopeKind.NONE)
DatasetFrom.global_ = DatasetFrom(ScopeKind.GLOBAL)
DatasetFrom.own = DatasetFrom(ScopeKind.OWN)


@dataclass(frozen=True, slots=True)
class Grant:
    """What the authenticated key may do in this request: the datasets it acts on."""

    principal: Principal
    dataset_ids: tuple[str, ...]

    @property
    def actor(self) -> Actor:
        return self.principal.actor

    @property
    def role(self) -> Role:
        return self.principal.role

    @property
    def scope(self) -> tuple[str, ...] | None:
        return self.principal.dataset_scope

    @property
    def dataset_id(self) -> str:
        """The one dataset a single-dataset route acts on."""
        (only,) = self.dataset_ids
        return only

    def sees(self, dataset_id: str | None) -> bool:
        """Whether a listed item of `dataset_id` may be shown to this key."""
        return self.scope is None or (dataset_id is not None and dataset_id in self.scope)

    def sees_key(self, key_scope: list[str] | None) -> bool:
        """Whether an API key with `key_scope` lies inside this key's scope."""
        return within(self.scope, key_scope)

    def require_unscoped(self, why: str) -> None:
        if self.scope is not None:
            raise Forbidden(f"{why}: this needs a key without dataset scope")


def within(outer: tuple[str, ...] | None, inner: list[str] | tuple[str, ...] | None) -> bool:
    """Whether the scope `inner` is no broader than `outer` (None: every dataset)."""
    if outer is None:
        return True
    return inner is not None and set(inner) <= set(outer)


class Authority:
    """The FastAPI dependency a route declares: roles admitted, dataset scope acted on."""

    def __init__(self, *roles: Role, scope: DatasetFrom) -> None:
        if not roles:
            raise ValueError("an authority admits at least one role")
        self.roles = roles
        self.scope = scope

    def __repr__(self) -> str:
        return f"Authority({', '.join(r.value for r in self.roles)}; {self.scope.kind.value})"

    async def __call__(self, request: Request, principal: CurrentKey, ctx: Context) -> Grant:
        principal.require_role(*self.roles)
        body = await _json_body(request) if self.scope.reads_body else None
        return await run_in_threadpool(
            resolve,
            ctx,
            principal,
            self.scope,
            path=request.path_params,
            query=request.query_params,
            body=body,
        )


def authority(*roles: Role, scope: DatasetFrom) -> Any:
    """`Annotated[Grant, authority(...)]`: declare a route's roles and dataset scope."""
    return Depends(Authority(*roles, scope=scope))


class Public:
    """Declares a route that takes no API key, and why (it authenticates otherwise)."""

    def __init__(self, reason: str) -> None:
        self.reason = reason

    async def __call__(self) -> None:  # a coroutine: no worker thread (see deps.get_context)
        return None


def public(reason: str) -> Any:
    return Depends(Public(reason))


async def _json_body(request: Request) -> Any:
    try:
        return await request.json()
    except ValueError as exc:
        raise InvalidRequest("the request body is not JSON") from exc


def resolve(
    ctx: GatewayContext,
    principal: Principal,
    scope: DatasetFrom,
    *,
    path: Mapping[str, Any],
    query: Mapping[str, str],
    body: Any,
) -> Grant:
    """The datasets the request acts on, each checked against the key's scope."""
    kind = scope.kind
    if kind is ScopeKind.NONE:
        return Grant(principal, ())
    if kind is ScopeKind.GLOBAL:
        if principal.dataset_scope is not None:
            raise Forbidden(
                "this acts on every dataset or on global settings: it needs a key without "
                "dataset scope"
            )
        return Grant(principal, ())
    if kind is ScopeKind.OWN:
        return Grant(principal, principal.dataset_scope or ())
    with transaction(ctx.engine) as session:
        if kind is ScopeKind.NEW_KEY:
            return _new_key(session, principal, body)
        ref = _reference(scope, path=path, query=query, body=body)
        if ref is None and scope.when_absent is not None:
            return resolve(ctx, principal, scope.when_absent, path=path, query=query, body=body)
        if ref is None:
            raise InvalidRequest(f"{scope.param!r} must name a dataset")
        if kind is ScopeKind.API_KEY:
            return _api_key(session, principal, ref)
        dataset_id = _dataset_of(session, kind, ref)
    principal.require_dataset(dataset_id)
    return Grant(principal, (dataset_id,))


def _reference(
    scope: DatasetFrom, *, path: Mapping[str, Any], query: Mapping[str, str], body: Any
) -> str | None:
    if scope.kind is ScopeKind.BODY:
        if not isinstance(body, dict):
            raise InvalidRequest("the request body must be a JSON object")
        value = body.get(scope.param)
        where = "body field"
    elif scope.kind is ScopeKind.QUERY:
        value = query.get(scope.param)
        where = "query parameter"
    else:
        value = path.get(scope.param)
        where = "path parameter"
    if value is None and scope.when_absent is not None:
        return None
    if not isinstance(value, str) or not value:
        raise InvalidRequest(f"{where} {scope.param!r} must name a dataset")
    return value


def _dataset_of(session: Session, kind: ScopeKind, ref: str) -> str:
    if kind is ScopeKind.ASSET:
        asset = session.get(Asset, ref)
        if asset is None:
            raise NotFound("no such asset", asset_id=ref)
        return asset.dataset_id
    if kind is ScopeKind.HOLD:
        hold = session.get(LegalHold, ref)
        if hold is None:
            raise NotFound(f"no legal hold {ref!r}", hold=ref)
        return hold.dataset_id
    return get_dataset(session, ref).id  # PATH, BODY, QUERY: a dataset by id or name


def _api_key(session: Session, principal: Principal, key_id: str) -> Grant:
    row = session.get(ApiKey, key_id)
    if row is None or not within(principal.dataset_scope, row.dataset_scope):
        raise NotFound("no such API key", key_id=key_id)  # outside the scope: as unknown
    return Grant(principal, tuple(row.dataset_scope or ()))


def _new_key(session: Session, principal: Principal, body: Any) -> Grant:
    """A key may mint only what MAY_CREATE allows, inside its scope, expiring no later."""
    if not isinstance(body, dict):
        raise InvalidRequest("the request body must be a JSON object")
    try:
        role = Role(str(body.get("role")))
    except ValueError as exc:
        raise InvalidRequest(f"role must be one of {', '.join(r.value for r in Role)}") from exc
    if role not in MAY_CREATE[principal.role]:
        raise Forbidden(f"a {principal.role.value} key cannot create {role.value} keys")
    scope = _requested_scope(body.get("dataset_scope"))
    if not within(principal.dataset_scope, scope):
        raise Forbidden(
            "a scoped key can only create keys within its own scope: name some of its "
            "datasets in dataset_scope",
            allowed=list(principal.dataset_scope or ()),
        )
    _no_later_expiry(principal, body.get("expires_at"))
    if scope is not None:
        unknown = [d for d in scope if session.get(Dataset, d) is None]
        if unknown:
            raise InvalidRequest("dataset_scope must name existing datasets by id", unknown=unknown)
    return Grant(principal, tuple(scope or ()))


def _requested_scope(value: Any) -> list[str] | None:
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise InvalidRequest("dataset_scope must be a list of dataset ids, or null for all")
    if not value:
        raise InvalidRequest("dataset_scope must name at least one dataset (null: every dataset)")
    return list(value)


def _no_later_expiry(principal: Principal, value: Any) -> None:
    if principal.expires_at is None:
        return
    if value is None:
        raise Forbidden("a key that expires cannot create a key that never expires")
    try:
        wanted = as_utc(datetime.fromisoformat(str(value)))
    except ValueError as exc:
        raise InvalidRequest("expires_at must be an ISO 8601 date-time") from exc
    if wanted > as_utc(principal.expires_at):
        raise Forbidden(
            "a key cannot create a key that outlives it",
            latest=as_utc(principal.expires_at).isoformat(),
        )
