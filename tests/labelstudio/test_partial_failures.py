"""A real sync in which one asset fails its metadata check mid-batch: the others are imported,
the failing one is recorded per asset (sync row, lineage, report), never sent, and retried on
the next run, which imports it exactly once after the repair."""

from __future__ import annotations

from sqlmodel import select

from gateway.core.db import transaction
from gateway.core.models import Asset, AssetSync, SyncState
from tests.labelstudio.fixtures import sync_as_admin
from tests.labelstudio.helpers import lineage, project_tasks


def _sync(ctx, dataset, destination):
    # the broken asset shares its batch with a healthy one
    return sync_as_admin(ctx, dataset, destination, batch_size=2)


def _set_private_meta(ctx, asset_id: str, sealed: bytes) -> None:
    with transaction(ctx.engine) as s:
        asset = s.get(Asset, asset_id)
        asset.private_meta = sealed
        s.add(asset)


def test_one_asset_failing_its_metadata_check_fails_alone_and_is_retried(
    ctx, dataset, released, destination, labelstudio
) -> None:
    broken = released[2]
    with transaction(ctx.engine) as s:
        sealed = s.get(Asset, broken).private_meta
    # its sealed metadata no longer authenticates (a corrupted row): task data cannot be built
    _set_private_meta(ctx, broken, sealed[:-1] + bytes([sealed[-1] ^ 0x01]))

    first = _sync(ctx, dataset, destination)
    assert first.failed == {broken: "integrity-failure"}
    assert first.created == len(released) - 1
    held = [t["data"]["gateway_asset_id"] for t in project_tasks(labelstudio, first.project_id)]
    assert sorted(held) == sorted(a for a in released if a != broken)
    with transaction(ctx.engine) as s:
        rows = {r.asset_id: r for r in s.exec(select(AssetSync)).all()}
    assert rows[broken].state == SyncState.FAILED and rows[broken].task_id is None
    assert rows[broken].error.startswith("integrity-failure") and rows[broken].attempts == 1
    assert {r.state for a, r in rows.items() if a != broken} == {SyncState.SYNCED}
    failed = lineage(ctx, "labelstudio.task_failed")
    assert [(f["entity"]["id"], f["parameters"]["error"]) for f in failed] == [
        (broken, "integrity-failure")
    ]
    intents = [a for r in lineage(ctx, "labelstudio.import_intent") for a in r["inputs"]["assets"]]
    assert broken not in intents  # never sent, not even as an intent

    second = _sync(ctx, dataset, destination)  # still broken: tried again, fails alone again
    assert second.failed == {broken: "integrity-failure"} and second.created == 0
    with transaction(ctx.engine) as s:
        assert s.get(AssetSync, (broken, destination.id)).attempts == 2

    _set_private_meta(ctx, broken, sealed)  # repaired
    third = _sync(ctx, dataset, destination)
    assert third.failed == {} and third.created == 1 and third.already == len(released) - 1
    held = [t["data"]["gateway_asset_id"] for t in project_tasks(labelstudio, first.project_id)]
    assert sorted(held) == sorted(released)  # every asset exactly once
    with transaction(ctx.engine) as s:
        row = s.get(AssetSync, (broken, destination.id))
    assert row.state == SyncState.SYNCED and row.error is None and row.attempts == 3
