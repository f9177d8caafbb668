"""The alternative image route, chosen per destination: Label Studio's own local-files
storage pointed at an export of the gateway's redacted copies. Label Studio serves exactly the
redacted bytes to its logged-in users; erasure deletes the task and the exported copy."""

from __future__ import annotations

import httpx
from sqlmodel import select

from gateway.core.db import transaction
from gateway.core.models import Asset, AssetSync, SyncState
from gateway.labelstudio.destinations import DestinationSpec, register_destination
from gateway.policy.erasure import request_erasure
from tests.labelstudio.fixtures import ADMIN, FAST_RETRY, sync_as_admin
from tests.labelstudio.helpers import assert_no_metadata, lineage, project_tasks, sdk


def test_a_local_files_destination_serves_only_the_exported_redacted_copies(
    ctx, dataset, released, labelstudio, gateway_server
) -> None:
    spec = DestinationSpec.model_validate(
        {
            "name": "annotators-local",
            "url": labelstudio.url,
            "token": labelstudio.token,
            "region": "eu-de",
            "gateway_url": gateway_server,
            "image_delivery": "local-files",
            "local_files_root": str(labelstudio.local_files_root),
            "allow_local_addresses": True,
        }
    )
    with transaction(ctx.engine) as s:
        destination = register_destination(ctx, s, spec, actor=ADMIN, retry=FAST_RETRY)
    report = sync_as_admin(ctx, dataset, destination)
    assert report.created == len(released) and report.failed == {}
    folder = labelstudio.local_files_root / "gateway" / destination.id / dataset.id
    with sdk(labelstudio) as client:
        storages = client.import_storage.local.list(project=report.project_id)
    assert [s.path for s in storages] == [str(folder)]

    auth = {"Authorization": f"Token {labelstudio.token}"}
    tasks = project_tasks(labelstudio, report.project_id)
    assert sorted(t["data"]["gateway_asset_id"] for t in tasks) == sorted(released)
    with transaction(ctx.engine) as s:
        blobs = {a: ctx.store.get(s.get(Asset, a).redacted_blob) for a in released}
    for task in tasks:
        image = task["data"]["image"]
        assert image.startswith(f"/data/local-files/?d=gateway/{destination.id}/{dataset.id}/")
        served = httpx.get(f"{labelstudio.url}{image}", headers=auth)
        assert served.status_code == 200
        assert served.content == blobs[task["data"]["gateway_asset_id"]]  # the redacted copy
        assert_no_metadata(served.content)
        assert httpx.get(f"{labelstudio.url}{image}").status_code in (401, 403)  # no login
    # the export holds one redacted copy per released asset, nothing else
    assert sorted(p.name[:36] for p in folder.iterdir()) == sorted(released)

    target = released[0]
    image = next(t["data"]["image"] for t in tasks if t["data"]["gateway_asset_id"] == target)
    with transaction(ctx.engine) as s:
        outcome = request_erasure(ctx, s, dataset_ref=dataset.name, actor=ADMIN, asset_id=target)
    assert outcome.erased == [target] and outcome.pending_recipients == 0
    assert not list(folder.glob(f"{target}-*"))  # the exported copy is gone
    assert httpx.get(f"{labelstudio.url}{image}", headers=auth).status_code == 404
    held = {t["data"]["gateway_asset_id"] for t in project_tasks(labelstudio, report.project_id)}
    assert target not in held and len(held) == len(released) - 1

    again = sync_as_admin(ctx, dataset, destination)  # idempotent: no task, file or storage twice
    assert again.created == 0 and again.already == len(released) - 1
    assert len(list(folder.iterdir())) == len(released) - 1
    assert len(lineage(ctx, "labelstudio.local_storage_connected")) == 1
    with transaction(ctx.engine) as s:
        states = {r.asset_id: r.state for r in s.exec(select(AssetSync)).all()}
    assert states[target] == SyncState.REMOVED


def test_local_files_needs_an_absolute_root_and_signed_urls_take_none() -> None:
    import pytest
    from pydantic import ValidationError

    base = {
        "name": "x",
        "url": "http://127.0.0.1:1",
        "token": "t",
        "region": "eu-de",
        "gateway_url": "http://127.0.0.1:2",
    }
    for extra in (
        {"image_delivery": "local-files"},
        {"image_delivery": "local-files", "local_files_root": "relative/dir"},
        {"local_files_root": "/srv/ls-files"},
        {"image_delivery": "s3"},
    ):
        with pytest.raises(ValidationError):
            DestinationSpec.model_validate({**base, **extra})
