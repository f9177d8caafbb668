"""The authorisation matrix: every route x role x scoped/unscoped key x own/other dataset.

The expected answers come from the hand-written table below (one row per route class, each
route placed in a class by hand), never from the routes' own `authority(...)` declarations.
Invariants checked on every answer, whatever the table says:
- a key scoped to dataset A never gets a 2xx on dataset B's resource, and no 2xx it gets
  mentions dataset B or B's asset;
- no key mints a key broader than itself (scope, role rules);
- every route of the app is in the table (a new route fails the suite until it is placed).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from fastapi.routing import APIRoute, iter_route_contexts
from fastapi.testclient import TestClient

from gateway.authz import Authority, Public
from gateway.core.db import transaction
from gateway.core.models import Role
from gateway.lineage import Actor
from gateway.main import create_app
from gateway.pipeline import NotBuiltRedactor
from gateway.policy.holds import place_hold
from tests.conftest import DATASET_SPEC
from tests.gateway.bad_inputs import good_jpeg
from tests.gateway.test_api import auth, make_key
from tests.policy.helpers import policy_doc

pytestmark = pytest.mark.db

ADMIN, INGEST, COMPLIANCE, ML = "admin", "ingest", "compliance", "ml"


# ---- the hand-written table ------------------------------------------------------------------
# scope rule: "dataset": acts on the target dataset (scoped key, other dataset: denied `deny`);
# "global": every dataset or global settings (any scoped key: 403);
# "none": no dataset's data (scope irrelevant); "list": lists/runs over the key's own datasets.


@dataclass(frozen=True)
class RouteClass:
    roles: frozenset[str]
    scope: str
    deny: int = 404  # what a scoped key gets on another dataset ("dataset" rule)


CLASSES = {
    "create-dataset": RouteClass(frozenset({ADMIN}), "global"),
    "list-datasets": RouteClass(frozenset({ADMIN, INGEST, COMPLIANCE}), "list"),
    "read-dataset": RouteClass(frozenset({ADMIN, INGEST, COMPLIANCE}), "dataset"),
    "upload": RouteClass(frozenset({ADMIN, INGEST}), "dataset"),
    "read-asset": RouteClass(frozenset({ADMIN, INGEST, COMPLIANCE}), "dataset"),
    "mint-key": RouteClass(frozenset({ADMIN}), "dataset", deny=403),
    "list-keys": RouteClass(frozenset({ADMIN}), "list"),
    "revoke-key": RouteClass(frozenset({ADMIN}), "dataset"),
    "global-settings": RouteClass(frozenset({ADMIN}), "global"),
    "policy-catalogue-admin": RouteClass(frozenset({ADMIN}), "none"),
    "policy-catalogue": RouteClass(frozenset({ADMIN, COMPLIANCE}), "none"),
    "bind-policy": RouteClass(frozenset({ADMIN}), "dataset"),
    "dataset-admin": RouteClass(frozenset({ADMIN}), "dataset"),
    "retention-run": RouteClass(frozenset({ADMIN}), "list"),
    "governance": RouteClass(frozenset({ADMIN, COMPLIANCE}), "dataset"),
    "ledger": RouteClass(frozenset({ADMIN, COMPLIANCE}), "none"),
    "dataset-report": RouteClass(frozenset({COMPLIANCE}), "dataset"),
    "every-dataset-report": RouteClass(frozenset({COMPLIANCE}), "global"),
    "ml": RouteClass(frozenset({ML}), "dataset"),
}

# Routes that take no API key: their own credential (or none) decides; any key is ignored.
PUBLIC = {
    "/health",  # probes and metrics say nothing about any dataset (gateway/api/health.py)
    "/health/live",
    "/health/ready",
    "/metrics",
    "/openapi.json",
    "/docs",
    "/docs/oauth2-redirect",
    "/redoc",
    "/v1/images/{destination_id}/{asset_id}",
    "/v1/webhooks/labelstudio/{destination_id}",
    "/v1/review-images/{destination_id}/{item_id}",  # a signed review URL (gateway/review)
}

Request = tuple[str, str, dict[str, Any]]
Ok = Callable[[httpx.Response], bool]


def status(*codes: int) -> Ok:
    return lambda r: r.status_code in codes


def not_found_saying(text: str) -> Ok:
    """An allowed request that the handler (not the authority) answers 404."""
    return lambda r: r.status_code == 404 and text in r.json().get("detail", "")


def fixed(verb: str, url: str, kwargs: dict[str, Any]) -> Build:
    """A request that is the same for every target."""
    return lambda _w, _t: (verb, url, kwargs)


def uuid4() -> str:
    return f"ds-{uuid.uuid4().hex[:8]}"


ok200 = status(200)


@dataclass
class World:
    client: TestClient
    ctx: Any
    root: str
    ids: dict[str, str] = field(default_factory=dict)  # own/other dataset, asset

    def dataset(self, target: str) -> str:
        return self.ids[target]

    def asset(self, target: str) -> str:
        return self.ids[f"{target}-asset"]

    def fresh_key(self, target: str) -> str:
        return make_key(self.ctx, Role.ML, scope=[self.dataset(target)]).split("_")[1]

    def fresh_hold(self, target: str) -> str:
        with transaction(self.ctx.engine) as s:
            hold = place_hold(
                self.ctx, s, dataset_ref=self.dataset(target), reason="case", actor=ACTOR
            )
            return hold.id


ACTOR = Actor("cli", "matrix")
Build = Callable[[World, str], Request]


def _policy(w: World, target: str) -> Request:
    doc = policy_doc(f"p-{target}").model_dump(mode="json")
    return "POST", "/v1/policies", {"json": {"document": doc, "dataset": w.dataset(target)}}


def _upload(w: World, target: str) -> Request:
    files = [("files", ("m.jpg", good_jpeg(7), "image/jpeg"))]
    return "POST", f"/v1/datasets/{w.dataset(target)}/assets", {"files": files}


def _ml_use(w: World, target: str) -> Request:
    body = {"action": "ml.predicted", "redacted_sha256": "0" * 64}
    url = f"/v1/ml/assets/{w.asset(target)}/uses"
    return "POST", url, {"json": body, "headers": {"X-ML-Backend-Region": "eu-de"}}


# (method, path) -> (class, request builder, what an allowed request answers)
ROUTES: dict[tuple[str, str], tuple[str, Build, Ok]] = {
    ("POST", "/v1/datasets"): (
        "create-dataset",
        lambda _w, _t: ("POST", "/v1/datasets", {"json": DATASET_SPEC | {"name": uuid4()}}),
        status(201),
    ),
    ("GET", "/v1/datasets"): ("list-datasets", fixed("GET", "/v1/datasets", {}), ok200),
    ("GET", "/v1/datasets/{dataset_ref}"): (
        "read-dataset",
        lambda w, t: ("GET", f"/v1/datasets/{w.dataset(t)}", {}),
        status(200),
    ),
    ("POST", "/v1/datasets/{dataset_ref}/assets"): ("upload", _upload, status(201)),
    ("GET", "/v1/assets/{asset_id}"): (
        "read-asset",
        lambda w, t: ("GET", f"/v1/assets/{w.asset(t)}", {}),
        status(200),
    ),
    ("POST", "/v1/api-keys"): (
        "mint-key",
        lambda w, t: (
            "POST",
            "/v1/api-keys",
            {"json": {"role": "ml", "dataset_scope": [w.dataset(t)]}},
        ),
        status(201),
    ),
    ("GET", "/v1/api-keys"): ("list-keys", fixed("GET", "/v1/api-keys", {}), ok200),
    ("DELETE", "/v1/api-keys/{key_id}"): (
        "revoke-key",
        lambda w, t: ("DELETE", f"/v1/api-keys/{w.fresh_key(t)}", {}),
        status(200),
    ),
    ("POST", "/v1/destinations"): (
        "global-settings",
        fixed("POST", "/v1/destinations", {"json": {}}),
        status(422),  # allowed, then refused by the schema: nothing is contacted
    ),
    ("GET", "/v1/destinations"): (
        "global-settings",
        fixed("GET", "/v1/destinations", {}),
        status(200),
    ),
    ("DELETE", "/v1/destinations/{ref}"): (
        "global-settings",
        fixed("DELETE", "/v1/destinations/no-such-destination", {}),
        status(404),
    ),
    ("POST", "/v1/policies/validate"): (
        "policy-catalogue-admin",
        lambda _w, _t: (
            "POST",
            "/v1/policies/validate",
            {"json": {"document": policy_doc("v").model_dump(mode="json")}},
        ),
        status(200),
    ),
    ("POST", "/v1/policies"): ("bind-policy", _policy, status(201)),
    ("GET", "/v1/policies"): ("policy-catalogue", fixed("GET", "/v1/policies", {}), ok200),
    ("GET", "/v1/policies/diff"): (
        "policy-catalogue",
        fixed("GET", "/v1/policies/diff", {"params": {"a": "p-own", "b": "p-other"}}),
        status(200),
    ),
    ("GET", "/v1/policies/{ref}"): (
        "policy-catalogue",
        fixed("GET", "/v1/policies/p-own", {}),
        status(200),
    ),
    ("GET", "/v1/regions"): ("policy-catalogue", fixed("GET", "/v1/regions", {}), ok200),
    ("POST", "/v1/datasets/{dataset_ref}/reprocess"): (
        "dataset-admin",
        lambda w, t: ("POST", f"/v1/datasets/{w.dataset(t)}/reprocess", {}),
        status(200),
    ),
    ("POST", "/v1/datasets/{dataset_ref}/sync"): (
        "dataset-admin",
        lambda w, t: ("POST", f"/v1/datasets/{w.dataset(t)}/sync", {"params": {"to": "nowhere"}}),
        not_found_saying("destination"),  # allowed, then the handler finds no such destination
    ),
    ("GET", "/v1/datasets/{dataset_ref}/sync/{job_id}"): (
        "dataset-admin",
        lambda w, t: ("GET", f"/v1/datasets/{w.dataset(t)}/sync/999999", {}),
        not_found_saying("sync job"),  # allowed, then the handler finds no such job
    ),
    ("POST", "/v1/retention/run"): (
        "retention-run",
        fixed("POST", "/v1/retention/run", {"params": {"dry_run": "true"}}),
        status(200),
    ),
    ("POST", "/v1/retention/holds"): (
        "governance",
        lambda w, t: (
            "POST",
            "/v1/retention/holds",
            {"json": {"dataset": w.dataset(t), "reason": "case 7"}},
        ),
        status(201),
    ),
    ("DELETE", "/v1/retention/holds/{hold_id}"): (
        "governance",
        lambda w, t: ("DELETE", f"/v1/retention/holds/{w.fresh_hold(t)}", {}),
        status(204),
    ),
    ("POST", "/v1/erasure-requests"): (
        "governance",
        lambda w, t: (
            "POST",
            "/v1/erasure-requests",
            {"json": {"dataset": w.dataset(t), "subject_id": "nobody-known"}},
        ),
        status(201),
    ),
    ("GET", "/v1/erasure-requests"): (
        "governance",
        lambda w, t: ("GET", "/v1/erasure-requests", {"params": {"dataset": w.dataset(t)}}),
        status(200),
    ),
    ("POST", "/v1/datasets/{dataset_ref}/vault/read"): (
        "dataset-admin",
        lambda w, t: (
            "POST",
            f"/v1/datasets/{w.dataset(t)}/vault/read",
            {"json": {"pseudonym": "subj-x", "purpose": "erasure request 2026-014"}},
        ),
        not_found_saying("no vault entry for this pseudonym"),
    ),
    ("GET", "/v1/lineage"): (
        "governance",
        lambda w, t: ("GET", "/v1/lineage", {"params": {"dataset": w.dataset(t)}}),
        status(200),
    ),
    ("GET", "/v1/lineage/assets/{asset_id}"): (
        "governance",
        lambda w, t: ("GET", f"/v1/lineage/assets/{w.asset(t)}", {}),
        status(200),
    ),
    ("POST", "/v1/lineage/checkpoints"): (
        "ledger",
        fixed("POST", "/v1/lineage/checkpoints", {}),
        status(201),
    ),
    ("GET", "/v1/lineage/keys"): ("ledger", fixed("GET", "/v1/lineage/keys", {}), ok200),
    ("GET", "/v1/datasets/{dataset_ref}/report"): (
        "dataset-report",
        lambda w, t: ("GET", f"/v1/datasets/{w.dataset(t)}/report", {}),
        status(200),
    ),
    ("GET", "/v1/reports/processing-activities"): (
        "every-dataset-report",
        fixed("GET", "/v1/reports/processing-activities", {}),
        status(200),
    ),
    ("GET", "/v1/ml/assets/{asset_id}/redacted"): (
        "ml",
        lambda w, t: (
            "GET",
            f"/v1/ml/assets/{w.asset(t)}/redacted",
            {"headers": {"X-ML-Backend-Region": "eu-de"}},
        ),
        not_found_saying("no released redacted copy"),  # quarantined: the handler's 404
    ),
    ("POST", "/v1/ml/assets/{asset_id}/uses"): ("ml", _ml_use, status(422)),
    ("PUT", "/v1/datasets/{dataset_ref}/review/destination"): (
        "dataset-admin",
        lambda w, t: (
            "PUT",
            f"/v1/datasets/{w.dataset(t)}/review/destination",
            {"json": {"destination": "nowhere"}},
        ),
        not_found_saying("destination"),  # allowed, then the handler finds no such destination
    ),
    ("POST", "/v1/datasets/{dataset_ref}/review/reviewers"): (
        "dataset-admin",
        lambda w, t: (
            "POST",
            f"/v1/datasets/{w.dataset(t)}/review/reviewers",
            {"json": {"labelstudio_user_id": 1}},
        ),
        not_found_saying("no review destination"),
    ),
    ("POST", "/v1/datasets/{dataset_ref}/review/queue"): (
        "dataset-admin",
        lambda w, t: ("POST", f"/v1/datasets/{w.dataset(t)}/review/queue", {}),
        not_found_saying("no review destination"),
    ),
    ("POST", "/v1/datasets/{dataset_ref}/review/pull"): (
        "dataset-admin",
        lambda w, t: ("POST", f"/v1/datasets/{w.dataset(t)}/review/pull", {}),
        not_found_saying("no review destination"),
    ),
    ("GET", "/v1/datasets/{dataset_ref}/review/pull/{job_id}"): (
        "dataset-admin",
        lambda w, t: ("GET", f"/v1/datasets/{w.dataset(t)}/review/pull/999999", {}),
        not_found_saying("no review pull job"),  # allowed, then no such job of this dataset
    ),
    ("GET", "/v1/datasets/{dataset_ref}/review/samples/{sample_id}/verify"): (
        "governance",
        lambda w, t: ("GET", f"/v1/datasets/{w.dataset(t)}/review/samples/nope/verify", {}),
        not_found_saying("no review sample"),
    ),
}


def expected(cls: RouteClass, role: str, scoped: bool, target: str) -> int | None:
    """None: allowed (the route's own answer); else the status of the refusal."""
    if role not in cls.roles:
        return 403
    if cls.scope == "global" and scoped:
        return 403
    if cls.scope == "dataset" and scoped and target == "other":
        return cls.deny
    return None


# ---- the fixtures ----------------------------------------------------------------------------


@pytest.fixture
def world(ctx, settings) -> Iterator[World]:
    app = create_app(settings, ctx=ctx, redactor_factory=NotBuiltRedactor)
    with TestClient(app) as client:
        w = World(client, ctx, make_key(ctx, Role.ADMIN))
        h = auth(w.root)
        for target in ("own", "other"):
            r = client.post("/v1/datasets", json=DATASET_SPEC | {"name": target}, headers=h)
            w.ids[target] = r.json()["id"]
            files = [("files", (f"{target}.jpg", good_jpeg(3 + len(target)), "image/jpeg"))]
            up = client.post(f"/v1/datasets/{w.ids[target]}/assets", files=files, headers=h)
            w.ids[f"{target}-asset"] = up.json()["results"][0]["asset_id"]
            doc = policy_doc(f"p-{target}").model_dump(mode="json")
            client.post("/v1/policies", json={"document": doc}, headers=h)
        yield w


def app_routes(app: Any) -> list[tuple[str, Any]]:
    """(full path, route) for every route, through included routers."""
    return [(c.path, c.original_route) for c in iter_route_contexts(app.routes)]


def route_keys(app: Any) -> set[tuple[str, str]]:
    found = set()
    for path, route in app_routes(app):
        if path in PUBLIC:
            continue
        for method in getattr(route, "methods", None) or ():
            found.add((method, path))
    return found


# ---- the tests -------------------------------------------------------------------------------


@pytest.fixture
def app(settings) -> Any:
    """The app as built, not started: its routes are all there is to read."""
    return create_app(settings, redactor_factory=NotBuiltRedactor)


def test_every_route_is_in_the_table(app) -> None:
    routes = route_keys(app)
    assert routes - set(ROUTES) == set(), "place these routes in the matrix table"
    assert set(ROUTES) - routes == set(), "the table names routes the app no longer has"


def test_every_route_declares_its_authority(app) -> None:
    """Each /v1 route carries exactly one Authority (or a Public reason) dependency."""

    def declared(dependant: Any) -> list[object]:
        found = [d.call for d in dependant.dependencies if isinstance(d.call, Authority | Public)]
        return found + [x for d in dependant.dependencies for x in declared(d)]

    checked = 0
    for path, route in app_routes(app):
        if isinstance(route, APIRoute) and path.startswith("/v1"):
            assert len(declared(route.dependant)) == 1, path
            checked += 1
    assert checked == len(ROUTES) + len([p for p in PUBLIC if p.startswith("/v1")])


def test_the_matrix(world) -> None:
    """Every route x role x scoped/unscoped x own/other dataset, and without a key."""
    keys = {
        (role.value, scoped): make_key(
            world.ctx, role, scope=[world.dataset("own")] if scoped else None
        )
        for role in Role
        for scoped in (False, True)
    }
    other_ids = {world.dataset("other"), world.asset("other")}
    wrong: list[str] = []
    for (method, path), (class_name, build, allowed_answer) in ROUTES.items():
        cls = CLASSES[class_name]
        for (role, scoped), token in keys.items():
            # own and other only differ for routes that act on a dataset
            for target in ("own", "other") if cls.scope == "dataset" else ("own",):
                verb, url, kwargs = build(world, target)
                headers = kwargs.get("headers", {}) | auth(token)
                rest = {k: v for k, v in kwargs.items() if k != "headers"}
                r = world.client.request(verb, url, headers=headers, **rest)
                cell = f"{method} {path} {role} {'scoped' if scoped else 'unscoped'} {target}"
                want = expected(cls, role, scoped, target)
                if want is None and not allowed_answer(r):
                    wrong.append(f"{cell}: allowed, but got {r.status_code} {r.text[:120]}")
                if want is not None and r.status_code != want:
                    wrong.append(f"{cell}: want {want}, got {r.status_code} {r.text[:120]}")
                # invariants, whatever the table says
                if scoped and r.is_success and target == "other" and cls.scope == "dataset":
                    wrong.append(f"{cell}: a scoped key got a 2xx on another dataset")
                if scoped and r.is_success and any(i in r.text for i in other_ids):
                    wrong.append(f"{cell}: a scoped key was shown another dataset")
    wrong += no_key_is_answered(world)
    assert wrong == [], "\n".join(wrong)


def no_key_is_answered(world: World) -> list[str]:
    """Every route of the table refuses a request without a key (401)."""
    wrong = []
    for (_, path), (_, build, _) in ROUTES.items():
        verb, url, kwargs = build(world, "own")
        r = world.client.request(verb, url, **kwargs)
        if r.status_code != 401:
            wrong.append(f"{verb} {path} without a key: {r.status_code}")
    return wrong


def test_no_key_mints_a_key_broader_than_itself(world) -> None:
    own, other = world.dataset("own"), world.dataset("other")
    scopes: list[list[str] | None] = [None, [own], [other], [own, other]]
    for role in Role:
        for minter_scope in (None, [own]):
            token = make_key(world.ctx, role, scope=minter_scope)
            for wanted_role in Role:
                for wanted in scopes:
                    body = {"role": wanted_role.value, "dataset_scope": wanted}
                    r = world.client.post("/v1/api-keys", json=body, headers=auth(token))
                    if not r.is_success:
                        assert r.status_code in (403, 422), r.text
                        continue
                    minted = r.json()["dataset_scope"]
                    assert role is Role.ADMIN, (role, body)
                    assert minter_scope is None or (
                        minted is not None and set(minted) <= set(minter_scope)
                    ), (minter_scope, minted)
                    seen = world.client.get("/v1/api-keys", headers=auth(r.json()["token"]))
                    assert wanted_role is Role.ADMIN or seen.status_code == 403
