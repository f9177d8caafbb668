"""Task data: one model writes it, one enum names its fields, nothing else spells them."""

from __future__ import annotations

import ast
from pathlib import Path

from gateway.labelstudio.task_model import TaskData, TaskField, claimed

ROOT = Path(__file__).resolve().parents[2]
HOME = "gateway/labelstudio/task_model.py"


def test_an_annotation_task_carries_the_image_the_ids_and_the_metadata() -> None:
    data = TaskData(image="u", asset_id="a", dataset_id="d", meta={"k": 1}).to_label_studio()
    assert data == {
        "image": "u",
        "gateway_asset_id": "a",
        "gateway_dataset_id": "d",
        "meta": {"k": 1},
    }
    assert list(data) == ["image", "gateway_asset_id", "gateway_dataset_id", "meta"]


def test_a_review_task_carries_its_item_and_note_and_no_dataset() -> None:
    data = TaskData(image="u", asset_id="a", review_item="i", review_note="n").to_label_studio()
    assert list(data) == ["image", "review_note", "gateway_review_item", "gateway_asset_id"]


def test_what_label_studio_hands_back_is_a_claim_of_any_type() -> None:
    assert claimed({"gateway_asset_id": 7}, TaskField.ASSET_ID) == 7
    assert claimed({}, TaskField.ASSET_ID) is None
    assert claimed(None, TaskField.ASSET_ID) is None
    assert claimed(["gateway_asset_id"], TaskField.ASSET_ID) is None  # type: ignore[arg-type]
    assert TaskField.DATASET_ID.column == "tasks:data.gateway_dataset_id"


def test_no_module_but_the_model_spells_a_gateway_task_field() -> None:
    # a field name as a value (a key, a column), not inside a sentence of a message or docstring
    names = {f.value for f in TaskField if f.value.startswith("gateway_")}
    names |= {f"tasks:data.{name}" for name in names}
    found = []
    for package in ("gateway", "ml_backend"):
        for path in sorted((ROOT / package).rglob("*.py")):
            relative = path.relative_to(ROOT).as_posix()
            if relative == HOME or "/migrations/" in relative:
                continue
            for node in ast.walk(ast.parse(path.read_text(), relative)):
                if isinstance(node, ast.Constant) and isinstance(node.value, str):
                    if node.value in names:
                        found.append(f"{relative}:{node.lineno}")
    assert found == [], f"use TaskField, not the literal: {found}"
