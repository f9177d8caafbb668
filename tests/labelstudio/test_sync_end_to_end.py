"""End to end against the real Label Studio: released, redacted photos become tasks; every
image URL in Label Studio's task data serves exactly the redacted, metadata-free rendition;
an annotation posted through Label Studio arrives in the gateway through the webhook."""

from __future__ import annotations

import io
import json

import httpx
import numpy as np
from PIL import Image
from sqlmodel import select

from gateway.core.db import transaction
from gateway.core.models import Asset, AssetSync, SyncState
from gateway.labelstudio.sync import sync_dataset
from gateway.labelstudio.tables import Annotation
from tests.labelstudio.fixtures import ADMIN, FAST_RETRY
from tests.labelstudio.helpers import (
    PERSON_BOX,
    assert_no_metadata,
    lineage,
    project_tasks,
    sdk,
    wait_for_annotations,
)


def test_sync_serves_only_redacted_images_and_hears_annotations(
    ctx, dataset, released, destination, labelstudio
) -> None:
    assert len(released) >= 3
    report = sync_dataset(
        ctx,
        dataset_ref=dataset.name,
        destination_ref=destination.name,
        actor=ADMIN,
        batch_size=2,
        retry=FAST_RETRY,
    )
    assert (report.created, report.adopted, report.already, report.failed) == (
        len(released),
        0,
        0,
        {},
    )
    tasks = project_tasks(labelstudio, report.project_id)
    assert sorted(t["data"]["gateway_asset_id"] for t in tasks) == sorted(released)

    with transaction(ctx.engine) as s:
        assets = {a: s.get(Asset, a) for a in released}
        subjects = [f"subject-{n}" for n in ("x",)]  # the pseudonymised subject ids below
    for task in tasks:
        data = task["data"]
        assert set(data) == {"image", "gateway_asset_id", "gateway_dataset_id", "meta"}
        assert data["gateway_dataset_id"] == dataset.id
        text = json.dumps(data)
        assert "subject-" not in text and ".jpg" not in text  # no subject id, no file name
        assert "gps" not in text.lower()
        asset = assets[data["gateway_asset_id"]]
        # fetched as the annotator's browser would: cross-origin from the Label Studio page
        response = httpx.get(data["image"], headers={"Origin": labelstudio.url})
        assert response.status_code == 200
        assert response.headers["access-control-allow-origin"] == labelstudio.url
        assert response.headers["content-type"] == "image/jpeg"
        assert response.headers["cache-control"] == "no-store"
        redacted = ctx.store.get(asset.redacted_blob)
        assert response.content == redacted
        served = np.asarray(Image.open(io.BytesIO(response.content)))
        stored = np.asarray(Image.open(io.BytesIO(redacted)))
        assert np.array_equal(served, stored)  # pixel by pixel: the redacted rendition
        assert_no_metadata(response.content)
    del subjects

    # an annotation made in Label Studio reaches the gateway through the webhook
    task = tasks[0]
    with sdk(labelstudio) as client:
        made = client.annotations.create(task["id"], result=[PERSON_BOX])
    wait_for_annotations(ctx, 1)  # read back from Label Studio after the webhook's answer
    with transaction(ctx.engine) as s:
        stored_rows = s.exec(select(Annotation)).all()
        assert len(stored_rows) == 1
        row = stored_rows[0]
        assert (row.task_id, row.ls_annotation_id) == (task["id"], made.id)
        assert row.asset_id == task["data"]["gateway_asset_id"]
        assert row.result[0]["value"]["rectanglelabels"] == ["person"]
        assert labelstudio.username not in row.annotator and row.annotator != "1"
    received = lineage(ctx, "annotation.received")
    assert len(received) == 1 and labelstudio.username not in json.dumps(received)

    # re-running a finished sync creates nothing
    again = sync_dataset(
        ctx, dataset_ref=dataset.name, destination_ref=destination.name, actor=ADMIN
    )
    assert (again.created, again.adopted, again.already) == (0, 0, len(released))
    assert len(project_tasks(labelstudio, report.project_id)) == len(released)
    with transaction(ctx.engine) as s:
        rows = s.exec(select(AssetSync)).all()
        assert {r.state for r in rows} == {SyncState.SYNCED}
    assert len(lineage(ctx, "labelstudio.task_synced")) == len(released)
