"""Policy versions: immutable once activated, bound to datasets, changes recorded, re-processing
of released assets under the new version with a dry run first."""

from __future__ import annotations

import pytest
from sqlmodel import select

from gateway.core.db import transaction
from gateway.core.models import Asset, AssetState, Job, JobState, PolicyVersion
from gateway.ingest import Upload, ingest_upload
from gateway.lineage import Actor
from gateway.pipeline import NotBuiltRedactor, drain
from gateway.policy.document import diff_documents
from gateway.policy.errors import PolicyImmutable
from gateway.policy.governing import governing_policy
from gateway.policy.reprocess import apply_reprocess, plan_reprocess
from gateway.policy.versions import get_version
from tests.gateway.bad_inputs import good_jpeg
from tests.policy.helpers import ADMIN, bind, lineage, policy_doc

pytestmark = pytest.mark.db


def test_activation_versions_binding_and_lineage(ctx, dataset) -> None:
    first = bind(ctx, dataset, policy_doc("street"))
    assert first.created and first.version.version == 1 and first.version.activated_at
    assert "retention.originals_days" not in first.changed_fields
    same = bind(ctx, dataset, policy_doc("street"))
    assert not same.created and same.version.id == first.version.id
    second = bind(ctx, dataset, policy_doc("street", retention={"originals_days": 7}))
    assert second.version.version == 2 and second.previous_version_id == first.version.id
    assert second.changed_fields == ["retention.originals_days"]
    with transaction(ctx.engine) as s:
        gov = governing_policy(s, dataset.id)
        assert (gov.version, gov.source) == (2, "dataset-binding")
        assert gov.document.retention.originals_days == 7
        assert get_version(s, "street@1").id == first.version.id
        assert get_version(s, "street").version == 2
    bound = lineage(ctx, "dataset.policy_bound")
    assert [b["parameters"]["policy_version"] for b in bound] == [1, 2]
    assert bound[1]["parameters"]["changed"] == ["retention.originals_days"]
    assert len(lineage(ctx, "policy.activated")) == 2


def test_activated_version_is_immutable(ctx, dataset) -> None:
    version_id = bind(ctx, dataset, policy_doc("frozen")).version.id
    with pytest.raises(PolicyImmutable), transaction(ctx.engine) as s:
        row = s.get(PolicyVersion, version_id)
        row.document = {**row.document, "description": "changed after the fact"}
        s.add(row)
        s.flush()
    with pytest.raises(PolicyImmutable), transaction(ctx.engine) as s:
        row = s.get(PolicyVersion, version_id)
        row.activated_at = None
        s.add(row)
        s.flush()


def test_database_refuses_raw_changes_to_activated_versions(ctx, dataset) -> None:
    from sqlalchemy import text
    from sqlalchemy.exc import DBAPIError

    version_id = bind(ctx, dataset, policy_doc("frozen-raw")).version.id
    for statement in (
        "UPDATE policyversion SET digest = 'x' WHERE id = :id",
        "DELETE FROM policyversion WHERE id = :id",
    ):
        with pytest.raises(DBAPIError, match="immutable"), ctx.engine.begin() as conn:
            conn.execute(text(statement), {"id": version_id})
    with transaction(ctx.engine) as s:  # drafts stay editable
        s.add(
            PolicyVersion(
                id="d1",
                name="draft",
                version=1,
                digest="0" * 64,
                document={},
                created_at=ctx.clock(),
            )
        )
    with ctx.engine.begin() as conn:
        conn.execute(text("UPDATE policyversion SET digest = 'y' WHERE id = 'd1'"))


def test_diff_lists_changed_fields() -> None:
    a = policy_doc("x")
    b = policy_doc(
        "x", residency={"annotation_regions": ["eea", "CH"]}, redaction={"operator": "fill"}
    )
    fields = [c["field"] for c in diff_documents(a, b)]
    assert fields == ["residency.annotation_regions", "redaction.operator"]
    assert diff_documents(a, a) == []


def test_reprocess_dry_run_then_apply(ctx, dataset) -> None:
    ids = []
    for i in range(2):
        with transaction(ctx.engine) as s:
            up = Upload(f"r{i}.jpg", good_jpeg(seed=10 + i))
            ids.append(ingest_upload(s, ctx, dataset, up, actor=Actor("cli", "t")).asset_id)
    drain(ctx, redactor=NotBuiltRedactor())
    new = bind(ctx, dataset, policy_doc("stricter", redaction={"operator": "fill"}))
    with transaction(ctx.engine) as s:
        dry = plan_reprocess(s, dataset.name)
    assert sorted(dry.eligible) == sorted(ids) and not dry.applied
    with transaction(ctx.engine) as s:
        assert all(s.get(Asset, a).state == AssetState.QUARANTINED for a in ids)  # untouched
        done = apply_reprocess(ctx, s, plan_reprocess(s, dataset.name), actor=ADMIN)
    assert sorted(done.eligible) == sorted(dry.eligible)
    with transaction(ctx.engine) as s:
        for a in ids:
            asset = s.get(Asset, a)
            assert asset.state == AssetState.PROCESSING
            assert asset.policy_version_id == new.version.id
        queued = s.exec(select(Job).where(Job.state == JobState.QUEUED)).all()
        assert sorted(j.asset_id for j in queued) == sorted(ids)
    drain(ctx, redactor=NotBuiltRedactor())
    with transaction(ctx.engine) as s:
        assert plan_reprocess(s, dataset.name).eligible == []  # all under the new version now


def test_activated_default_governs_unbound_datasets(ctx, dataset) -> None:
    from gateway.policy.versions import activate

    with transaction(ctx.engine) as s:
        assert governing_policy(s, dataset.id).source == "default-file"
        activate(s, ctx, policy_doc("default", retention={"originals_days": 7}), actor=ADMIN)
    with transaction(ctx.engine) as s:
        gov = governing_policy(s, dataset.id)
    assert (gov.source, gov.version) == ("default-version", 1)
    assert gov.document.retention.originals_days == 7
