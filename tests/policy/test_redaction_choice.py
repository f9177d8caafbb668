"""The pipeline redacts each asset under its dataset's policy (the real isolated engine)."""

from __future__ import annotations

import pytest

from gateway.core.db import transaction
from gateway.core.models import Asset, AssetState, PolicyVersion
from gateway.ingest import Upload, ingest_upload
from gateway.lineage import Actor
from gateway.pipeline import drain
from gateway.redactor import IsolatedRedactor, policy_digest
from tests.gateway.bad_inputs import good_jpeg
from tests.policy.helpers import bind, lineage, policy_doc

pytestmark = [pytest.mark.db, pytest.mark.integration]


@pytest.mark.timeout(300)
def test_each_dataset_is_redacted_under_its_own_policy(ctx, dataset) -> None:
    doc = policy_doc("fill-faces", redaction={"operator": "fill"})
    version = bind(ctx, dataset, doc).version
    with transaction(ctx.engine) as s:
        asset_id = ingest_upload(
            s, ctx, dataset, Upload("a.jpg", good_jpeg(seed=3)), actor=Actor("cli", "t")
        ).asset_id
    redactor = IsolatedRedactor(ctx.settings)  # built with the library defaults
    try:
        assert drain(ctx, redactor=redactor) == 1
    finally:
        redactor.close()
    with transaction(ctx.engine) as s:
        asset = s.get(Asset, asset_id)
        assert asset.state == AssetState.RELEASED
        assert asset.policy_version_id == version.id
    [released] = lineage(ctx, "asset.released")
    assert released["parameters"]["redaction_policy_sha256"] == policy_digest(doc.redaction)
    assert policy_digest(doc.redaction) != policy_digest(redactor.policy)


def test_unactivated_binding_quarantines(ctx, dataset) -> None:
    with transaction(ctx.engine) as s:
        s.add(
            PolicyVersion(
                id="draft",
                name="d",
                version=1,
                digest="0" * 64,
                document={},
                created_at=ctx.clock(),
            )
        )
        s.flush()
        asset_id = ingest_upload(
            s, ctx, dataset, Upload("b.jpg", good_jpeg(seed=4)), actor=Actor("cli", "t")
        ).asset_id
        s.get(type(dataset), dataset.id).policy_version_id = "draft"
    redactor = IsolatedRedactor(ctx.settings)
    try:
        drain(ctx, redactor=redactor)
    finally:
        redactor.close()
    with transaction(ctx.engine) as s:
        asset = s.get(Asset, asset_id)
        assert asset.state == AssetState.QUARANTINED
        assert asset.reasons[-1]["code"] == "policy-missing"
