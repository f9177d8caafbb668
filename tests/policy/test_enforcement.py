"""Every enforcement point with an allowing and a denying policy, on a real database."""

from __future__ import annotations

import pytest
from sqlmodel import select

from gateway.core.db import transaction
from gateway.core.errors import ResidencyViolation
from gateway.core.models import Asset, PolicyVersion
from gateway.ingest import Upload, ingest_upload
from gateway.lineage import Actor, append
from gateway.policy.enforcement import EnforcementPoint, enforce_residency
from tests.gateway.bad_inputs import good_jpeg
from tests.policy.helpers import bind, lineage, policy_doc

pytestmark = pytest.mark.db
T = Actor("cli", "t")


def _ingest(ctx, dataset, name: str = "a.jpg"):
    with transaction(ctx.engine) as s:
        return ingest_upload(s, ctx, dataset, Upload(name, good_jpeg()), actor=T)


def _check(ctx, dataset, point: EnforcementPoint, region: str, basis: str | None = None) -> None:
    with transaction(ctx.engine) as s:
        enforce_residency(
            ctx,
            s,
            point=point,
            dataset_id=dataset.id,
            target_region=region,
            actor=T,
            entity_type="asset",
            entity_id="asset-1",
            transfer_basis=basis,
        )


def test_ingest_allowed_in_the_gateways_region(ctx, dataset) -> None:
    bind(ctx, dataset, policy_doc(residency={"processing_regions": ["DE"]}))
    out = _ingest(ctx, dataset)
    assert out.error is None and not out.duplicate
    assert lineage(ctx, "residency.blocked") == []


def test_ingest_blocked_outside_processing_regions_keeps_nothing(ctx, dataset) -> None:
    bind(ctx, dataset, policy_doc(residency={"processing_regions": ["FR"]}))
    with pytest.raises(ResidencyViolation) as info:
        _ingest(ctx, dataset)
    details = info.value.details
    assert details["rule"] == "residency.processing_regions"
    assert details["target_region"] == "eu-de" and details["point"] == "ingest"
    assert details["policy"] == "test-policy" and details["policy_version"] == 1
    assert info.value.problem()["code"] == "residency-violation"
    with transaction(ctx.engine) as s:
        assert s.exec(select(Asset)).all() == []
    assert not any(
        ctx.store.exists(p.name) for p in ctx.settings.resolved_storage_dir.rglob("*.bin")
    )
    [blocked] = lineage(ctx, "residency.blocked")
    assert blocked["parameters"]["rule"] == "residency.processing_regions"
    assert blocked["parameters"]["point"] == "ingest"
    assert blocked["dataset"] == dataset.id


def test_storage_write_blocked_when_the_store_is_elsewhere(ctx, dataset) -> None:
    bind(ctx, dataset, policy_doc(residency={"storage_regions": ["FR"]}))
    with pytest.raises(ResidencyViolation) as info:
        _ingest(ctx, dataset)
    assert info.value.details["rule"] == "residency.storage_regions"
    assert info.value.details["point"] == "storage_write"
    assert list(ctx.settings.resolved_storage_dir.rglob("*.bin")) == []
    assert len(lineage(ctx, "residency.blocked")) == 1


def test_storage_write_allowed_when_the_store_is_in_an_allowed_region(ctx, dataset) -> None:
    ctx.settings.storage_region = "eu-fr"
    bind(ctx, dataset, policy_doc(residency={"storage_regions": ["FR"]}))
    out = _ingest(ctx, dataset)
    assert out.error is None
    assert len(list(ctx.settings.resolved_storage_dir.rglob("*.bin"))) == 1


@pytest.mark.parametrize(
    ("point", "allowed_region", "denied_region", "rule"),
    [
        (EnforcementPoint.SYNC, "eu-ie", "us-east", "residency.annotation_regions"),
        (EnforcementPoint.ML_BACKEND, "eu-de-2", "uk-lon", "residency.processing_regions"),
        (EnforcementPoint.EXPORT, "eu-fr", "ch-zh", "residency.storage_regions"),
    ],
)
def test_sync_ml_and_export_points(ctx, dataset, point, allowed_region, denied_region, rule):
    bind(ctx, dataset, policy_doc())
    _check(ctx, dataset, point, allowed_region)
    with pytest.raises(ResidencyViolation) as info:
        _check(ctx, dataset, point, denied_region)
    assert info.value.details["rule"] == rule
    assert info.value.details["target_region"] == denied_region
    [blocked] = lineage(ctx, "residency.blocked")
    assert blocked["parameters"]["point"] == point.value
    assert blocked["parameters"]["target_region"] == denied_region


def test_us_destination_under_dpf_or_scc_policy(ctx, dataset) -> None:
    from gateway.policy.loader import load_policy_file
    from tests.policy.helpers import DEFAULT

    doc = load_policy_file(DEFAULT.parent / "examples" / "us-annotation-dpf-or-scc.yaml")
    bind(ctx, dataset, doc)
    _check(ctx, dataset, EnforcementPoint.SYNC, "us-east", "dpf")
    _check(ctx, dataset, EnforcementPoint.SYNC, "us-west", "scc")
    with pytest.raises(ResidencyViolation) as info:
        _check(ctx, dataset, EnforcementPoint.SYNC, "us-east", None)
    assert info.value.details["rule"] == "chapter-v.adequacy-scope"


def test_blocked_record_survives_the_callers_rollback(ctx, dataset) -> None:
    """The caller wrote first (holding SQLite's write lock); its work rolls back, the block
    record commits once the caller's transaction has ended."""
    with pytest.raises(ResidencyViolation), transaction(ctx.engine) as s:
        append(
            s,
            action="test.caller_work",
            entity_type="asset",
            entity_id="a1",
            actor=T,
            now=ctx.clock(),
            region="eu-de",
            dataset_id=dataset.id,
        )
        enforce_residency(
            ctx,
            s,
            point=EnforcementPoint.SYNC,
            dataset_id=dataset.id,
            target_region="us-east",
            actor=T,
            entity_type="asset",
            entity_id="a1",
        )
    actions = [r["action"] for r in lineage(ctx)]
    assert "residency.blocked" in actions and "test.caller_work" not in actions


def test_unknown_region_and_missing_policy_fail_closed(ctx, dataset) -> None:
    with pytest.raises(ResidencyViolation) as info:
        _check(ctx, dataset, EnforcementPoint.STORAGE_WRITE, "atlantis-1")
    assert info.value.details["rule"] == "catalogue.unknown-name"
    # a dataset bound to a version that was never activated: nothing moves
    with transaction(ctx.engine) as s:
        draft = PolicyVersion(
            id="draft-1",
            name="draft",
            version=1,
            digest="0" * 64,
            document={},
            created_at=ctx.clock(),
        )
        s.add(draft)
        s.flush()
        row = s.get(type(dataset), dataset.id)
        row.policy_version_id = draft.id
    with pytest.raises(ResidencyViolation) as info:
        _check(ctx, dataset, EnforcementPoint.INGEST, "eu-de")
    assert info.value.details["rule"] == "policy.missing"


def test_default_policy_governs_unbound_datasets(ctx, dataset) -> None:
    _check(ctx, dataset, EnforcementPoint.SYNC, "eea-no")  # default: eea everywhere
    with pytest.raises(ResidencyViolation) as info:
        _check(ctx, dataset, EnforcementPoint.SYNC, "ch-zh")
    assert info.value.details["policy"] == "default"
    assert "policy_version" not in info.value.details  # the shipped file, not a version
