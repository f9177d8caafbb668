"""What Label Studio 1.23.2 really sends and returns for an annotation with the editor's
fractional coordinates (recorded from the real server: the ANNOTATION_CREATED webhook body
and GET /api/annotations/{id}), read the way the gateway reads them."""

from __future__ import annotations

import json
from pathlib import Path

from gateway.labelstudio.annotation_store import held_annotation
from gateway.labelstudio.annotations import parse_hint
from gateway.labelstudio.result_digest import result_sha256

RECORDED = Path(__file__).parents[1] / "data" / "labelstudio" / "annotation_created_ls_1_23_2.json"


def _recorded() -> tuple[bytes, dict]:
    both = json.loads(RECORDED.read_text())
    return json.dumps(both["webhook"]).encode(), both["api"]


def test_the_webhook_is_read_as_a_hint_naming_the_annotation() -> None:
    body, _ = _recorded()
    hint = parse_hint(body)
    assert (hint.action, hint.annotation_ids, hint.task_id, hint.flags) == (
        "ANNOTATION_CREATED",
        (1,),
        1,
        (),
    )
    assert hint.claimed_asset_id == "00000000-0000-4000-8000-000000000001"


def test_the_read_back_is_kept_unchanged_and_without_the_annotators_email() -> None:
    body, api = _recorded()
    assert "30.769230769230766" in RECORDED.read_text()  # Label Studio's own digits
    held = held_annotation(api)
    assert held.result == api["result"]  # every field, every digit
    assert held.result[0]["value"]["x"] == 30.769230769230766
    assert (held.ls_id, held.task_id, held.completed_by, held.was_cancelled) == (1, 1, 1, False)
    assert "admin@gateway.local" in api["created_username"]  # what Label Studio carries ...
    assert "admin@gateway.local" not in repr(held)  # ... and what the gateway keeps
    # the webhook's copy and the API's copy of the result have one digest
    assert result_sha256(held.result) == result_sha256(json.loads(body)["annotation"]["result"])
