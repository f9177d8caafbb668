"""The committed pre-label ground truth is a Label Studio export that names images only by
SHA-256 (no image, no upload URL, no account data) and that the accuracy bench can read."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DATA = REPO / "bench" / "data"


@pytest.mark.timeout(30)
@pytest.mark.parametrize(
    "name", ["prelabels_ground_truth.json", "prelabels_hand_boxes_by_eye.json"]
)
def test_tasks_name_images_by_digest_and_hold_one_annotation(name: str) -> None:
    text = (DATA / name).read_text()
    assert "/data/upload" not in text and "http" not in text and "@" not in text
    tasks = json.loads(text)
    digests = [t["data"]["image"] for t in tasks]
    assert all(re.fullmatch(r"sha256:[0-9a-f]{64}", d) for d in digests)
    assert len(set(digests)) == len(tasks) == 39
    assert not any("plates-openalpr" in t["data"]["file"] for t in tasks)  # the AGPL set
    for task in tasks:
        (annotation,) = [a for a in task["annotations"] if not a.get("was_cancelled")]
        for r in annotation["result"]:
            assert (r["type"], r["from_name"], r["to_name"]) == (
                "rectanglelabels",
                "label",
                "image",
            )
            v = r["value"]
            assert v["rectanglelabels"][0] in ("Person", "Vehicle")
            assert 0 <= v["x"] and 0 <= v["y"] and v["width"] > 0 and v["height"] > 0
            assert v["x"] + v["width"] <= 100.01 and v["y"] + v["height"] <= 100.01


@pytest.mark.timeout(30)
def test_accuracy_bench_reads_the_editor_export() -> None:
    from bench.prelabel_accuracy import BY_EYE_FILE, GT_FILE, ground_truth

    editor, by_eye = ground_truth(GT_FILE), ground_truth(BY_EYE_FILE)
    assert [g["sha256"] for g in editor] == [g["sha256"] for g in by_eye]
    count = {c: sum(len(g["boxes"][c]) for g in editor) for c in ("person", "vehicle")}
    assert count == {"person": 134, "vehicle": 85}
    # the editor's regions say where they came from: kept by-eye boxes or drawn in the editor
    tasks = json.loads(GT_FILE.read_text())
    origins = {r.get("origin") for t in tasks for r in t["annotations"][0]["result"]}
    assert origins == {"prediction", "manual"}
