"""Residency denial, exactly-once after a crash (simulated between import and record, and a
real SIGKILL of the CLI), per-asset failures, and removal on erasure, against the real server."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import httpx
import pytest
from sqlmodel import select

from gateway.core.db import transaction
from gateway.core.errors import ResidencyViolation
from gateway.core.models import Asset, AssetState, AssetSync, SyncState
from gateway.labelstudio.destinations import connect
from gateway.labelstudio.projects import ensure_project
from gateway.labelstudio.residency_withdrawal import enforce_or_withdraw
from gateway.labelstudio.sync import _record_intent
from gateway.labelstudio.tables import LabelStudioProject
from gateway.policy.erasure import request_erasure
from tests.labelstudio.fixtures import ADMIN, FAST_RETRY, add_destination, sync_as_admin
from tests.labelstudio.helpers import lineage, project_tasks


def test_destination_in_a_denied_region_blocks_the_sync_and_records_it(
    ctx, dataset, released, labelstudio, gateway_server
) -> None:
    us = add_destination(ctx, labelstudio, gateway_server, name="annotators-us", region="us-east")
    with pytest.raises(ResidencyViolation) as denied:
        sync_as_admin(ctx, dataset, us)
    assert denied.value.details["rule"]
    assert denied.value.details["target_region"] == "us-east"
    blocked = lineage(ctx, "residency.blocked")
    assert len(blocked) == 1 and blocked[0]["entity"]["id"] == us.id
    with transaction(ctx.engine) as s:
        assert s.exec(select(AssetSync)).all() == []
        assert s.exec(select(LabelStudioProject)).all() == []


def test_a_crash_between_import_and_record_is_resumed_exactly_once(
    ctx, dataset, released, destination, labelstudio
) -> None:
    client = connect(ctx, destination, retry=FAST_RETRY)
    try:
        project_id = ensure_project(
            ctx, client, dataset=dataset, destination=destination, actor=ADMIN
        )
        # what a run killed right after Label Studio accepted the import leaves behind
        crashed = _record_intent(ctx, destination, project_id, released[:2], ADMIN)
        clearance = enforce_or_withdraw(ctx, dataset.id, destination, actor=ADMIN)
        client.import_tasks(project_id, [data for _, data in crashed], clearance=clearance)
        # and a run killed right after recording its intent, before the import
        _record_intent(ctx, destination, project_id, released[2:3], ADMIN)
    finally:
        client.close()
    with transaction(ctx.engine) as s:
        states = {r.asset_id: r.state for r in s.exec(select(AssetSync)).all()}
    assert set(states.values()) == {SyncState.INTENT_RECORDED}

    report = sync_as_admin(ctx, dataset, destination, batch_size=2)
    assert report.adopted == 2 and report.created == len(released) - 2
    tasks = project_tasks(labelstudio, project_id)
    per_asset = sorted(t["data"]["gateway_asset_id"] for t in tasks)
    assert per_asset == sorted(released)  # every asset exactly once
    adopted = [
        r for r in lineage(ctx, "labelstudio.task_synced") if r["parameters"]["adopted"] == "yes"
    ]
    assert len(adopted) == 2


@pytest.mark.timeout(300)
def test_killing_the_cli_sync_halfway_and_rerunning_completes_it_exactly_once(
    ctx, dataset, released, destination, labelstudio
) -> None:
    env = {
        **os.environ,
        "GATEWAY_DATA_DIR": str(ctx.settings.data_dir),
        "GATEWAY_DATABASE_URL": ctx.settings.resolved_database_url,
        "GATEWAY_MASTER_KEY": ctx.settings.master_key.get_secret_value(),
        "GATEWAY_REGION": ctx.settings.region,
    }
    command = [sys.executable, "-m", "gateway", "sync", dataset.name, "--to", destination.name]
    proc = subprocess.Popen(
        [*command, "--batch-size", "1"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        _wait_for_tasks(ctx, destination.id, at_least=1, proc=proc)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=30)
    done = subprocess.run(command, env=env, capture_output=True, timeout=240, check=False)
    assert done.returncode == 0, done.stderr.decode()
    with transaction(ctx.engine) as s:
        project = s.exec(select(LabelStudioProject)).one()
        rows = s.exec(select(AssetSync)).all()
    tasks = project_tasks(labelstudio, project.project_id)
    assert sorted(t["data"]["gateway_asset_id"] for t in tasks) == sorted(released)
    assert {r.state for r in rows} == {SyncState.SYNCED}
    assert sorted(r.task_id for r in rows) == sorted(t["id"] for t in tasks)


def _wait_for_tasks(ctx, destination_id: str, *, at_least: int, proc) -> None:
    import time

    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and proc.poll() is None:
        with transaction(ctx.engine) as s:
            rows = s.exec(select(AssetSync).where(AssetSync.destination_id == destination_id)).all()
        if sum(r.state != SyncState.PENDING for r in rows) >= at_least:
            return
        time.sleep(0.05)  # polling another process's progress, not timing anything


def test_erasure_removes_the_task_from_label_studio_and_the_url_answers_410(
    ctx, dataset, released, destination, labelstudio
) -> None:
    report = sync_as_admin(ctx, dataset, destination)
    target = released[0]
    with transaction(ctx.engine) as s:
        sync_row = s.get(AssetSync, (target, destination.id))
        task_id = sync_row.task_id
    url = next(
        t["data"]["image"]
        for t in project_tasks(labelstudio, report.project_id)
        if t["id"] == task_id
    )
    assert httpx.get(url).status_code == 200
    with transaction(ctx.engine) as s:
        outcome = request_erasure(ctx, s, dataset_ref=dataset.name, actor=ADMIN, asset_id=target)
    assert outcome.pending_recipients == 0 and outcome.erased == [target]
    response = httpx.get(
        f"{labelstudio.url}/api/tasks/{task_id}",
        headers={"Authorization": f"Token {labelstudio.token}"},
    )
    assert response.status_code == 404  # gone from Label Studio, with its annotations
    remaining = {
        t["data"]["gateway_asset_id"] for t in project_tasks(labelstudio, report.project_id)
    }
    assert target not in remaining and len(remaining) == len(released) - 1
    with transaction(ctx.engine) as s:
        assert s.get(AssetSync, (target, destination.id)).state == SyncState.REMOVED
        assert s.get(Asset, target).state == AssetState.ERASED
    assert httpx.get(url).status_code == 410
    removed = lineage(ctx, "labelstudio.task_removed")
    assert removed[0]["outputs"] == {"deleted_tasks": [task_id], "verified_absent": "yes"}
    # and a later sync never brings it back
    again = sync_as_admin(ctx, dataset, destination)
    assert again.created == 0


def test_a_sync_withdraws_tasks_of_assets_quarantined_since(
    ctx, dataset, released, destination, labelstudio
) -> None:
    from gateway.asset_states import transition

    first = sync_as_admin(ctx, dataset, destination)
    target = released[1]
    with transaction(ctx.engine) as s:
        asset = s.get(Asset, target)
        transition(
            s,
            asset,
            AssetState.QUARANTINED,
            actor=ADMIN,
            now=ctx.clock(),
            region=ctx.settings.region,
            reasons=[{"code": "manual-review", "message": "officer asked"}],
        )
    second = sync_as_admin(ctx, dataset, destination)
    assert second.withdrawn == 1 and second.created == 0
    held = {t["data"]["gateway_asset_id"] for t in project_tasks(labelstudio, first.project_id)}
    assert target not in held and len(held) == len(released) - 1
    with transaction(ctx.engine) as s:
        assert s.get(AssetSync, (target, destination.id)).state == SyncState.REMOVED
