"""Retention: the dry run lists exactly what the real run deletes; an interrupted run is
finished by the next one; legal holds exempt; every deletion is recorded."""

from __future__ import annotations

import pytest
from sqlmodel import select

from gateway.core.db import transaction
from gateway.core.models import Asset, AssetState
from gateway.core.storage import BlobStore
from gateway.ingest import Upload, ingest_upload
from gateway.lineage import Actor
from gateway.pipeline import NotBuiltRedactor, drain
from gateway.policy.holds import place_hold, release_hold
from gateway.policy.retention import DueKind, run_retention
from gateway.pseudonymisation.tables import VaultEntry
from tests.gateway.bad_inputs import good_jpeg
from tests.policy.helpers import ADMIN, bind, lineage, policy_doc

pytestmark = pytest.mark.db
T = Actor("cli", "t")
RETENTION = {
    "originals_days": 10,
    "redacted_days": 30,
    "vault_days": 20,
    "labelstudio_task_days": 30,
    "lineage_min_days": 3650,
}


def _assets(ctx, dataset, n: int = 3, subject: str | None = "subject-1") -> list[str]:
    bind(ctx, dataset, policy_doc(retention=RETENTION))
    ids = []
    for i in range(n):
        with transaction(ctx.engine) as s:
            upload = Upload(f"img{i}.jpg", good_jpeg(seed=i), subject_id=subject)
            out = ingest_upload(s, ctx, dataset, upload, actor=T)
            ids.append(out.asset_id)
    drain(ctx, redactor=NotBuiltRedactor())  # quarantined, original kept (real pipeline)
    return ids


def _states(ctx, ids: list[str]) -> list[str]:
    with transaction(ctx.engine) as s:
        return [s.get(Asset, i).state for i in ids]


def _originals_deleted(ctx, ids: list[str]) -> list[bool]:
    with transaction(ctx.engine) as s:
        return [s.get(Asset, i).original_deleted_at is not None for i in ids]


def test_dry_run_lists_exactly_what_the_real_run_deletes(ctx, dataset, clock) -> None:
    ids = _assets(ctx, dataset)
    assert run_retention(ctx, dry_run=True).plan.due == []
    clock.advance(days=11)
    dry = run_retention(ctx, dry_run=True)
    assert {(i.kind, i.entity_id) for i in dry.plan.due} == {(DueKind.ORIGINAL, a) for a in ids}
    assert _states(ctx, ids) == [AssetState.QUARANTINED] * 3  # the dry run touched nothing
    real = run_retention(ctx, dry_run=False)
    assert real.done == dry.plan.due and real.skipped == []
    # the original's deletion is recorded beside the lifecycle, which it does not change
    assert _states(ctx, ids) == [AssetState.QUARANTINED] * 3
    assert _originals_deleted(ctx, ids) == [True] * 3
    assert list(ctx.settings.resolved_storage_dir.rglob("*.bin")) == []
    records = lineage(ctx, "asset.original_deleted")
    assert sorted(r["entity"]["id"] for r in records) == sorted(ids)
    assert {r["parameters"]["rule"] for r in records} == {"retention.originals_days=10"}
    assert {r["parameters"]["state"] for r in records} == {"quarantined"}
    assert run_retention(ctx, dry_run=False).done == []  # idempotent


class CrashAfterDeletes:
    """The real store, and a process death right after the n-th delete (before the commit)."""

    def __init__(self, inner: BlobStore, n: int) -> None:
        self.inner, self.left = inner, n

    def put(self, key: str, data: bytes) -> None:
        self.inner.put(key, data)

    def get(self, key: str) -> bytes:
        return self.inner.get(key)

    def exists(self, key: str) -> bool:
        return self.inner.exists(key)

    def delete(self, key: str) -> bool:
        deleted = self.inner.delete(key)
        self.left -= 1
        if self.left == 0:
            raise KeyboardInterrupt("killed mid-run")
        return deleted


def test_interrupted_run_completes_on_rerun(ctx, dataset, clock) -> None:
    ids = _assets(ctx, dataset)
    clock.advance(days=11)
    real_store = ctx.store
    ctx.store = CrashAfterDeletes(real_store, n=2)
    with pytest.raises(KeyboardInterrupt):
        run_retention(ctx, dry_run=False)
    ctx.store = real_store
    assert _originals_deleted(ctx, ids).count(True) == 1  # only the first committed
    rerun = run_retention(ctx, dry_run=False)
    assert len(rerun.done) == 2
    assert _originals_deleted(ctx, ids) == [True] * 3
    assert list(ctx.settings.resolved_storage_dir.rglob("*.bin")) == []
    recorded = [r["entity"]["id"] for r in lineage(ctx, "asset.original_deleted")]
    assert sorted(recorded) == sorted(ids)  # each deletion recorded exactly once


def test_legal_hold_exempts_until_released(ctx, dataset, clock) -> None:
    ids = _assets(ctx, dataset)
    with transaction(ctx.engine) as s:
        whole = place_hold(ctx, s, dataset_ref=dataset.id, reason="case 2026-17", actor=ADMIN)
        place_hold(
            ctx, s, dataset_ref=dataset.id, reason="case 2026-18", actor=ADMIN, asset_id=ids[0]
        )
    clock.advance(days=11)
    report = run_retention(ctx, dry_run=False)
    assert report.done == [] and len(report.plan.held) == 3
    with transaction(ctx.engine) as s:
        release_hold(ctx, s, whole.id, actor=ADMIN)
    report = run_retention(ctx, dry_run=False)
    assert sorted(i.entity_id for i in report.done) == sorted(ids[1:])
    assert [i.entity_id for i in report.plan.held] == [ids[0]]
    assert len(lineage(ctx, "legal_hold.placed")) == 2
    assert len(lineage(ctx, "legal_hold.released")) == 1


def test_expiry_deletes_everything_and_vault_entries_go_on_their_own_clock(
    ctx, dataset, clock
) -> None:
    ids = _assets(ctx, dataset)
    with transaction(ctx.engine) as s:
        assert s.exec(select(VaultEntry)).all()  # subject and file-name pseudonyms remembered
    clock.advance(days=21)
    first = run_retention(ctx, dry_run=False)
    kinds = {i.kind for i in first.done}
    assert kinds == {DueKind.ORIGINAL, DueKind.VAULT_ENTRY}
    with transaction(ctx.engine) as s:
        assert s.exec(select(VaultEntry)).all() == []
    clock.advance(days=10)
    second = run_retention(ctx, dry_run=False)
    assert {i.kind for i in second.done} == {DueKind.REDACTED}
    with transaction(ctx.engine) as s:
        for asset_id in ids:
            asset = s.get(Asset, asset_id)
            assert asset.state == AssetState.EXPIRED
            assert asset.private_meta is None and asset.original_blob is None
    assert len(lineage(ctx, "asset.expired")) == 3
    assert len(lineage(ctx, "retention.vault_entry_deleted")) >= 3


def test_dataset_without_a_valid_policy_is_reported_and_untouched(ctx, dataset, clock) -> None:
    ids = _assets(ctx, dataset)
    from gateway.core.models import Dataset, PolicyVersion

    with transaction(ctx.engine) as s:
        s.add(
            PolicyVersion(
                id="draft",
                name="draft",
                version=1,
                digest="0" * 64,
                document={},
                created_at=ctx.clock(),
            )
        )
        s.flush()
        s.get(Dataset, dataset.id).policy_version_id = "draft"
    clock.advance(days=400)
    report = run_retention(ctx, dry_run=False)
    assert report.done == [] and report.plan.errors[0]["dataset_id"] == dataset.id
    assert _states(ctx, ids) == [AssetState.QUARANTINED] * 3


def test_the_services_scheduled_job_runs_the_same_retention(ctx, dataset, clock) -> None:
    from gateway.policy.scheduler import RetentionScheduler

    ids = _assets(ctx, dataset)
    clock.advance(days=11)
    scheduler = RetentionScheduler(ctx, interval_seconds=0)
    scheduler.run_once()  # 0: the service runs no loop; the CLI and API still run it
    assert _originals_deleted(ctx, ids) == [True] * 3


def test_an_asset_whose_original_is_gone_cannot_be_processed_again(ctx, dataset, clock) -> None:
    from gateway.asset_states import transition
    from gateway.core.errors import InvalidStateTransition

    ids = _assets(ctx, dataset, n=1)
    clock.advance(days=11)
    run_retention(ctx, dry_run=False)
    with transaction(ctx.engine) as s:
        asset = s.get(Asset, ids[0])
        assert asset.state == AssetState.QUARANTINED and asset.original_deleted_at is not None
        with pytest.raises(InvalidStateTransition, match="original was deleted"):
            transition(s, asset, AssetState.PROCESSING, actor=T, now=clock(), region="eu-de")
