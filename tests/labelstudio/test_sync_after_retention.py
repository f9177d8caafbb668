"""Released means syncable while the redacted copy lives: with `originals_days: 0` (the
README's example) retention deletes every original at once, and the released assets still
become tasks whose images load. Every asset a sync leaves out is named with its reason, in
the CLI's output and the API's answer."""

from __future__ import annotations

import httpx

from gateway.asset_states import transition
from gateway.core.db import transaction
from gateway.core.models import Asset, AssetState, AssetSync, Role
from gateway.policy.retention import DueKind, run_retention
from tests.gateway.test_api import make_key
from tests.labelstudio.fixtures import ADMIN
from tests.labelstudio.helpers import project_tasks
from tests.labelstudio.test_cli_and_ontology import _cli
from tests.policy.helpers import bind, policy_doc


def _admin_key(ctx) -> str:
    return make_key(ctx, Role.ADMIN, label="sync", actor=ADMIN)


def test_released_assets_sync_after_retention_deleted_their_originals(
    ctx, dataset, released, destination, labelstudio, gateway_server
) -> None:
    bind(ctx, dataset, policy_doc(retention={"originals_days": 0}))
    report = run_retention(ctx, dry_run=False)
    assert {(i.kind, i.entity_id) for i in report.done} >= {(DueKind.ORIGINAL, a) for a in released}
    with transaction(ctx.engine) as s:
        assets = [s.get(Asset, a) for a in released]
        assert all(a.state == AssetState.RELEASED and a.original_blob is None for a in assets)
        assert all(a.original_deleted_at is not None for a in assets)
        held = s.get(Asset, released[0])
        transition(
            s,
            held,
            AssetState.QUARANTINED,
            actor=ADMIN,
            now=ctx.clock(),
            region=ctx.settings.region,
            reasons=[{"code": "test-hold", "message": "held back by the test"}],
        )

    cli = _cli(ctx, "sync", dataset.name, "--to", destination.name)
    assert cli.returncode == 0, cli.stderr
    assert f"{len(released) - 1} tasks created" in cli.stdout
    assert "skipped 1: quarantined: test-hold" in cli.stdout
    assert f"skipped: {released[0]} (quarantined: test-hold)" in cli.stdout

    with transaction(ctx.engine) as s:
        project_id = s.get(AssetSync, (released[1], destination.id)).project_id
    tasks = project_tasks(labelstudio, project_id)
    assert sorted(t["data"]["gateway_asset_id"] for t in tasks) == sorted(released[1:])
    for task in tasks:  # the redacted copies still load, with no original behind them
        assert httpx.get(task["data"]["image"]).status_code == 200

    answer = httpx.post(
        f"{gateway_server}/v1/datasets/{dataset.name}/sync",
        params={"to": destination.name},
        headers={"Authorization": f"Bearer {_admin_key(ctx)}"},
        timeout=120,
    )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert (body["created"], body["already"], body["failed"]) == (0, len(released) - 1, [])
    assert body["skipped"] == [{"asset_id": released[0], "reason": "quarantined: test-hold"}]
    assert body["skipped_by_reason"] == {"quarantined: test-hold": 1}
