"""The Clearance: made only by an allowed residency check, required and checked at each sink."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from gateway.core.clearance import Clearance, ClearanceMismatch, EnforcementPoint
from gateway.core.db import transaction
from gateway.core.errors import ResidencyViolation
from gateway.core.storage import (
    LocalBlobStore,
    RegionalBlobStore,
    get_cleared,
    located_key,
    original_key,
    put_cleared,
)
from gateway.labelstudio.client import LabelStudioClient
from gateway.lineage import Actor
from gateway.outbound import AddressPolicy
from gateway.policy.enforcement import enforce_residency
from tests.policy.helpers import bind, policy_doc

ROOT = Path(__file__).resolve().parents[2]
P = EnforcementPoint
T = Actor("cli", "t")
# the one module that may call Clearance(...) in the product
MAKERS = {"gateway/policy/enforcement.py"}


def _clear(ctx, dataset, point: EnforcementPoint, region: str) -> Clearance:
    with transaction(ctx.engine) as s:
        return enforce_residency(
            ctx,
            s,
            point=point,
            dataset_id=dataset.id,
            target_region=region,
            actor=T,
            entity_type="dataset",
            entity_id=dataset.id,
        )


def _constructions(path: Path) -> list[int]:
    tree = ast.parse(path.read_text(), filename=str(path))
    lines = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            fn = node.func
            name = fn.id if isinstance(fn, ast.Name) else getattr(fn, "attr", None)
            if name == "Clearance":
                lines.append(node.lineno)
    return lines


def test_nothing_but_the_enforcement_code_makes_a_clearance() -> None:
    found = {}
    for package in ("gateway", "ml_backend", "redaction"):
        for path in sorted((ROOT / package).rglob("*.py")):
            relative = path.relative_to(ROOT).as_posix()
            lines = _constructions(path)
            if lines and relative not in MAKERS:
                found[relative] = lines
    assert found == {}, f"only {MAKERS} may construct a Clearance: {found}"
    assert all(_constructions(ROOT / m) for m in MAKERS)  # the scan does see the real maker


@pytest.mark.db
def test_an_allowed_check_returns_what_it_cleared(ctx, dataset) -> None:
    bind(ctx, dataset, policy_doc(residency={"storage_regions": ["DE"]}))
    clearance = _clear(ctx, dataset, P.STORAGE_WRITE, "eu-de")
    assert (clearance.dataset_id, clearance.point, clearance.region) == (
        dataset.id,
        P.STORAGE_WRITE,
        "eu-de",
    )
    assert clearance.policy_version == "test-policy@1"
    with pytest.raises(ResidencyViolation):  # and a denied one returns none
        _clear(ctx, dataset, P.STORAGE_WRITE, "us-east")


def test_a_clearance_covers_one_point_one_dataset_one_region() -> None:
    c = Clearance("ds-a", P.SYNC, "eu-de", "p@1")
    assert c.require(P.SYNC, dataset_id="ds-a", region="eu-de") is c
    for point, dataset_id, region, says in [
        (P.EXPORT, "ds-a", "eu-de", "it clears sync, not export"),
        (P.SYNC, "ds-b", "eu-de", "it clears dataset ds-a, not ds-b"),
        (P.SYNC, "ds-a", "us-east", "it clears region eu-de, not us-east"),
    ]:
        with pytest.raises(ClearanceMismatch, match=says) as info:
            c.require(point, dataset_id=dataset_id, region=region)
        assert info.value.status == 403 and info.value.code == "clearance-mismatch"
        assert isinstance(info.value, ResidencyViolation)


def _regional(tmp_path: Path) -> RegionalBlobStore:
    stores = {r: LocalBlobStore(tmp_path / r) for r in ("eu-de", "us-east")}
    return RegionalBlobStore(stores, write_region="eu-de")


def test_a_store_write_needs_the_storage_clearance_of_its_dataset_and_region(tmp_path) -> None:
    store = _regional(tmp_path)
    key = located_key(store, original_key("ds-a", "asset-1"), region="eu-de")
    for wrong in (
        Clearance("ds-a", P.SYNC, "eu-de", "p@1"),  # another move
        Clearance("ds-b", P.STORAGE_WRITE, "eu-de", "p@1"),  # another dataset
        Clearance("ds-a", P.STORAGE_WRITE, "us-east", "p@1"),  # another region
    ):
        with pytest.raises(ClearanceMismatch):
            put_cleared(store, key, b"sealed", wrong)
        assert not store.exists(key)
    with pytest.raises(ResidencyViolation, match="no storage residency check"):
        store.put(key, b"sealed")  # a raw write to a bucket store is refused outright
    right = Clearance("ds-a", P.STORAGE_WRITE, "eu-de", "p@1")
    put_cleared(store, key, b"sealed", right)
    put_cleared(store, key, b"again", right)  # one clearance, one operation's writes
    assert store.get(key) == b"again"


def test_a_local_store_write_is_checked_against_the_clearance_too(tmp_path) -> None:
    store = LocalBlobStore(tmp_path)
    key = original_key("ds-a", "asset-1")
    with pytest.raises(ClearanceMismatch):
        put_cleared(store, key, b"x", Clearance("ds-b", P.STORAGE_WRITE, "eu-de", "p@1"))
    put_cleared(store, key, b"x", Clearance("ds-a", P.STORAGE_WRITE, "eu-de", "p@1"))
    assert store.get(key) == b"x"


def test_a_blob_handed_onwards_needs_that_moves_clearance(tmp_path) -> None:
    store = LocalBlobStore(tmp_path)
    key = original_key("ds-a", "asset-1")
    put_cleared(store, key, b"pixels", Clearance("ds-a", P.STORAGE_WRITE, "eu-de", "p@1"))
    ml = Clearance("ds-a", P.ML_BACKEND, "eu-de", "p@1")
    assert get_cleared(store, key, ml, point=P.ML_BACKEND, to_region="eu-de") == b"pixels"
    with pytest.raises(ClearanceMismatch):  # an ML clearance does not let it go to annotators
        get_cleared(store, key, ml, point=P.SYNC, to_region="eu-de")
    with pytest.raises(ClearanceMismatch):  # nor to a backend in another region
        get_cleared(store, key, ml, point=P.ML_BACKEND, to_region="us-east")


def test_label_studio_gets_no_task_without_a_sync_clearance_for_its_region() -> None:
    """Refused before any request: the client's address is never even resolved."""
    policy = AddressPolicy(allow_local_addresses=False)
    client = LabelStudioClient("http://ls.invalid", "t", policy=policy, region="us-east")
    tasks = [{"data": {"image": "x", "gateway_dataset_id": "ds-a"}}]
    try:
        with pytest.raises(ClearanceMismatch, match="not us-east"):
            client.import_tasks(1, tasks, clearance=Clearance("ds-a", P.SYNC, "eu-de", "p@1"))
        with pytest.raises(ClearanceMismatch, match="not ds-b"):
            client.import_tasks(
                1,
                [{"data": {"gateway_dataset_id": "ds-b"}}],
                clearance=Clearance("ds-a", P.SYNC, "us-east", "p@1"),
            )
        with pytest.raises(ClearanceMismatch, match="not sync"):
            client.import_tasks(1, tasks, clearance=Clearance("ds-a", P.EXPORT, "us-east", "p@1"))
    finally:
        client.close()
    nowhere = LabelStudioClient("http://ls.invalid", "t", policy=policy)
    try:
        with pytest.raises(ClearanceMismatch, match="names no region"):
            nowhere.import_tasks(1, tasks, clearance=Clearance("ds-a", P.SYNC, "eu-de", "p@1"))
    finally:
        nowhere.close()
