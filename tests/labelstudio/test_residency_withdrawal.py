"""A newly activated policy that forbids a destination's region: activating it first shows,
as a dry run, which tasks it would withdraw; the next reconcile (or sync) withdraws them,
after pulling their annotations, and records it, instead of annotators seeing broken images."""

from __future__ import annotations

import httpx
import pytest
import yaml
from sqlmodel import delete, select

from gateway.core.db import transaction
from gateway.core.errors import ResidencyViolation
from gateway.core.models import AssetSync, PolicyVersion, SyncState
from gateway.labelstudio.reconcile import reconcile_all
from gateway.labelstudio.sync import sync_dataset
from gateway.labelstudio.tables import Annotation
from tests.labelstudio.fixtures import ADMIN, FAST_RETRY
from tests.labelstudio.helpers import PERSON_BOX, lineage, project_tasks, sdk
from tests.labelstudio.test_cli_and_ontology import _cli
from tests.labelstudio.test_sync_after_retention import _admin_key
from tests.policy.helpers import bind, policy_doc

FR_ONLY = policy_doc("fr-annotation", residency={"annotation_regions": ["FR"]})
RULE = "residency.annotation_regions"


def _synced(ctx, dataset, destination, labelstudio) -> list[dict]:
    report = sync_dataset(
        ctx, dataset_ref=dataset.name, destination_ref=destination.name, actor=ADMIN
    )
    assert report.created > 0 and not report.failed
    return project_tasks(labelstudio, report.project_id)


def _live(ctx) -> int:
    with transaction(ctx.engine) as s:
        rows = s.exec(select(AssetSync).where(AssetSync.state == SyncState.SYNCED)).all()
        return len(rows)


def test_activation_dry_run_then_reconcile_withdraws_keeping_the_work(
    ctx, dataset, released, destination, labelstudio, gateway_server, tmp_path
) -> None:
    tasks = _synced(ctx, dataset, destination, labelstudio)
    with sdk(labelstudio) as client:
        made = client.annotations.create(tasks[0]["id"], result=[PERSON_BOX])
    with transaction(ctx.engine) as s:  # as if the webhook had been lost
        s.exec(delete(Annotation))
    policy_yaml = yaml.safe_dump(FR_ONLY.model_dump(mode="json", exclude_none=True))
    admin = {"Authorization": f"Bearer {_admin_key(ctx)}"}

    # the dry run lists every live task, and changes nothing
    dry = httpx.post(
        f"{gateway_server}/v1/policies",
        params={"dry_run": "true"},
        json={"yaml": policy_yaml, "dataset": dataset.name},
        headers=admin,
    )
    assert dry.status_code == 200, dry.text
    [group] = dry.json()["withdraw"]
    assert (group["destination"], group["region"], group["rule"]) == (
        destination.name,
        "eu-de",
        RULE,
    )
    assert sorted(t["task_id"] for t in group["tasks"]) == sorted(t["id"] for t in tasks)
    assert "residency.annotation_regions" in dry.json()["changed_fields"]
    policy_file = tmp_path / "fr.yaml"
    policy_file.write_text(policy_yaml)
    cli = _cli(
        ctx, "policies", "activate", str(policy_file), "--dataset", dataset.name, "--dry-run"
    )
    assert cli.returncode == 0, cli.stderr
    assert f"would withdraw {len(tasks)} task(s) of dataset {dataset.id}" in cli.stdout
    with transaction(ctx.engine) as s:
        assert s.exec(select(PolicyVersion).where(PolicyVersion.name == FR_ONLY.name)).all() == []
    assert len(project_tasks(labelstudio, tasks[0]["project"])) == len(tasks)

    # activated: the answer names the same tasks; the images stop loading at once
    real = httpx.post(
        f"{gateway_server}/v1/policies",
        json={"yaml": policy_yaml, "dataset": dataset.name},
        headers=admin,
    )
    assert real.status_code == 201, real.text
    assert real.json()["withdraw"] == dry.json()["withdraw"]
    assert httpx.get(tasks[0]["data"]["image"]).status_code == 403

    # the next reconcile pulls the annotation, then withdraws every task, and records it
    tick = reconcile_all(ctx, retry=FAST_RETRY)
    withdrawal = tick.withdrawn[destination.name]
    assert (withdrawal.removed, withdrawal.pending, withdrawal.deferred) == (len(tasks), 0, None)
    assert project_tasks(labelstudio, tasks[0]["project"]) == []
    assert _live(ctx) == 0
    with transaction(ctx.engine) as s:
        [kept] = s.exec(select(Annotation)).all()
        assert kept.ls_annotation_id == made.id
    [record] = lineage(ctx, "labelstudio.residency_withdrawn")
    assert record["parameters"]["rule"] == RULE and record["parameters"]["policy"] == FR_ONLY.name
    assert record["outputs"] == {"removed": len(tasks), "removal_pending": 0}
    removed = lineage(ctx, "labelstudio.task_removed")
    assert {r["parameters"]["reason"] for r in removed} == {f"residency: {RULE}"}
    assert reconcile_all(ctx, retry=FAST_RETRY).withdrawn == {}  # nothing left to withdraw


def test_the_next_sync_withdraws_then_refuses(
    ctx, dataset, released, destination, labelstudio
) -> None:
    tasks = _synced(ctx, dataset, destination, labelstudio)
    bind(ctx, dataset, FR_ONLY)
    with pytest.raises(ResidencyViolation) as refused:
        sync_dataset(
            ctx,
            dataset_ref=dataset.name,
            destination_ref=destination.name,
            actor=ADMIN,
            retry=FAST_RETRY,
        )
    assert refused.value.details["rule"] == RULE
    assert refused.value.details["withdrawn_tasks"] == len(tasks)
    assert f"{len(tasks)} task(s) withdrawn" in refused.value.message
    assert project_tasks(labelstudio, tasks[0]["project"]) == []
    assert _live(ctx) == 0
    assert len(lineage(ctx, "labelstudio.residency_withdrawn")) == 1
