"""Erasure requests (Art. 17): by subject (via the keyed pseudonym) or by asset; the register
shows the deadline and state; the identifier itself is recorded nowhere."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlmodel import select

from gateway.core.db import transaction
from gateway.core.errors import InvalidRequest, NotFound
from gateway.core.models import Asset, AssetState, LineageRecord
from gateway.ingest import Upload, ingest_upload
from gateway.lineage import Actor
from gateway.pipeline import NotBuiltRedactor, drain
from gateway.policy.erasure import (
    erasure_register,
    one_month_later,
    register_view,
    request_erasure,
)
from gateway.pseudonymisation.tables import VaultEntry
from tests.gateway.bad_inputs import good_jpeg
from tests.policy.helpers import ADMIN, lineage

pytestmark = pytest.mark.db
ALICE = "alice@example.org"


def _ingest(ctx, dataset, subjects: list[str]) -> list[str]:
    ids = []
    for i, subject in enumerate(subjects):
        with transaction(ctx.engine) as s:
            up = Upload(f"photo-{i}.jpg", good_jpeg(seed=i), subject_id=subject)
            ids.append(ingest_upload(s, ctx, dataset, up, actor=Actor("cli", "t")).asset_id)
    drain(ctx, redactor=NotBuiltRedactor())
    return ids


def test_erase_subject_removes_their_assets_only_and_records_no_identifier(ctx, dataset) -> None:
    ids = _ingest(ctx, dataset, [ALICE, "bob", ALICE])
    with transaction(ctx.engine) as s:
        vault_before = len(s.exec(select(VaultEntry)).all())
        result = request_erasure(ctx, s, dataset_ref=dataset.name, actor=ADMIN, subject_id=ALICE)
    assert sorted(result.erased) == sorted([ids[0], ids[2]])
    assert result.request.state == "completed" and result.pending_recipients == 0
    with transaction(ctx.engine) as s:
        for asset_id in (ids[0], ids[2]):
            asset = s.get(Asset, asset_id)
            assert asset.state == AssetState.ERASED
            assert asset.private_meta is None and asset.original_blob is None
        assert s.get(Asset, ids[1]).state == AssetState.QUARANTINED
        vault_after = s.exec(select(VaultEntry)).all()
        assert 0 < len(vault_after) < vault_before  # bob's entries stay
        payloads = [r.payload for r in s.exec(select(LineageRecord)).all()]
    assert len(list(ctx.settings.resolved_storage_dir.rglob("*.bin"))) == 1  # bob's original
    assert not any(ALICE in p for p in payloads)
    [req] = lineage(ctx, "erasure.requested")
    assert req["parameters"]["subject_pseudonym"].startswith("subj_")
    assert len(lineage(ctx, "asset.erased")) == 2
    # the register: one month to answer, done, nobody to tell
    with transaction(ctx.engine) as s:
        [row] = erasure_register(s, dataset_id=dataset.id)
    view = register_view(row, now=ctx.clock())
    assert view["state"] == "completed" and view["assets_erased"] == 2
    assert view["due_at"].startswith("2026-02-15") and not view["overdue"]
    assert view["subject_pseudonym"] == req["parameters"]["subject_pseudonym"]


def test_erase_by_asset_and_again_is_harmless(ctx, dataset) -> None:
    ids = _ingest(ctx, dataset, ["carol", "dave"])
    with transaction(ctx.engine) as s:
        result = request_erasure(ctx, s, dataset_ref=dataset.id, actor=ADMIN, asset_id=ids[1])
    assert result.erased == [ids[1]]
    with transaction(ctx.engine) as s:
        again = request_erasure(ctx, s, dataset_ref=dataset.id, actor=ADMIN, asset_id=ids[1])
    assert again.erased == [] and again.request.state == "completed"


def test_unknown_subject_is_registered_with_nothing_found(ctx, dataset) -> None:
    _ingest(ctx, dataset, ["erin"])
    with transaction(ctx.engine) as s:
        result = request_erasure(ctx, s, dataset_ref=dataset.id, actor=ADMIN, subject_id="nobody")
    assert result.erased == [] and result.request.state == "completed"


def test_bad_requests_are_refused_and_nothing_recorded(ctx, dataset) -> None:
    with pytest.raises(InvalidRequest), transaction(ctx.engine) as s:
        request_erasure(ctx, s, dataset_ref=dataset.id, actor=ADMIN)
    with pytest.raises(InvalidRequest), transaction(ctx.engine) as s:
        request_erasure(ctx, s, dataset_ref=dataset.id, actor=ADMIN, subject_id="a", asset_id="b")
    with pytest.raises(NotFound), transaction(ctx.engine) as s:
        request_erasure(ctx, s, dataset_ref=dataset.id, actor=ADMIN, asset_id="no-such-asset")
    with transaction(ctx.engine) as s:
        assert erasure_register(s) == []


@pytest.mark.parametrize(
    ("received", "due"),
    [
        (datetime(2026, 1, 31, 12, tzinfo=UTC), datetime(2026, 2, 28, 12, tzinfo=UTC)),
        (datetime(2024, 1, 31, tzinfo=UTC), datetime(2024, 2, 29, tzinfo=UTC)),
        (datetime(2026, 12, 15, tzinfo=UTC), datetime(2027, 1, 15, tzinfo=UTC)),
    ],
)
def test_one_month_deadline(received: datetime, due: datetime) -> None:
    assert one_month_later(received) == due
