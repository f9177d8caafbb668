"""What annotators see in Label Studio's task list: the image and the annotation state, not the
gateway's ids or the metadata JSON; and the editor answers a ticked privacy flag."""

from __future__ import annotations

import httpx

from gateway.labelstudio.config import FLAG_RECEIVED, PRIVACY_FLAG_NAME
from gateway.labelstudio.projects import ANNOTATOR_VIEW, HIDDEN_TASK_COLUMNS
from gateway.labelstudio.sync import sync_dataset
from tests.labelstudio.fixtures import ADMIN


def _get(labelstudio, path: str, **params) -> object:
    answer = httpx.get(
        f"{labelstudio.url}{path}",
        params=params,
        headers={"Authorization": f"Token {labelstudio.token}"},
    )
    answer.raise_for_status()
    return answer.json()


def test_the_task_list_hides_gateway_ids_and_metadata(
    ctx, dataset, released, destination, labelstudio
) -> None:
    report = sync_dataset(
        ctx, dataset_ref=dataset.name, destination_ref=destination.name, actor=ADMIN
    )
    sync_dataset(ctx, dataset_ref=dataset.name, destination_ref=destination.name, actor=ADMIN)
    views = _get(labelstudio, "/api/dm/views", project=report.project_id)
    ours = [v for v in views if v["data"].get("title") == ANNOTATOR_VIEW]
    assert len(ours) == 1  # made once, not once per sync
    hidden = ours[0]["data"]["hiddenColumns"]
    assert set(hidden["explore"]) == set(hidden["labeling"]) == set(HIDDEN_TASK_COLUMNS)
    # every hidden column is one Label Studio really shows for these tasks; the image stays
    columns = _get(labelstudio, "/api/dm/columns", project=report.project_id)["columns"]
    ids = {f"tasks:{'data.' if c.get('parent') == 'data' else ''}{c['id']}" for c in columns}
    assert set(HIDDEN_TASK_COLUMNS) <= ids
    assert "tasks:data.image" in ids and "tasks:data.image" not in HIDDEN_TASK_COLUMNS
    project = _get(labelstudio, f"/api/projects/{report.project_id}")
    assert f'whenTagName="{PRIVACY_FLAG_NAME}"' in project["label_config"]
    assert FLAG_RECEIVED in project["label_config"]
