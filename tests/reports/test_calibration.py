"""The calibration batch: seeded, recorded, and its pixels show exactly the planted faces."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from gateway.reports.calibration import PHOTOS, build_batch, labelled_faces, planted_found


def _pixels(data: bytes) -> np.ndarray:
    return cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR).astype(np.int16)


def _change(a: np.ndarray, b: np.ndarray, box: list[int] | tuple[int, ...]) -> float:
    x, y, w, h = box
    return float(np.abs(a[y : y + h, x : x + w] - b[y : y + h, x : x + w]).mean())


def test_the_batch_is_seeded_and_recorded() -> None:
    one, again, other = build_batch(seed=11), build_batch(seed=11), build_batch(seed=12)
    assert [i.manifest() for i in one.items] == [i.manifest() for i in again.items]
    assert [i.visible for i in one.items] != [i.visible for i in other.items]
    faces = labelled_faces()
    assert {i.photo for i in one.items} == set(faces)  # the bundled CC0 photos with faces
    for item in one.items:
        assert sorted(item.visible + item.masked) == sorted(faces[item.photo])
        assert len(item.visible) <= 2
    assert any(not i.visible for i in one.items)  # controls: not every item hides a face
    assert one.planted == sum(len(i.visible) for i in one.items) > 0
    manifest = json.dumps([i.manifest() for i in one.items])
    assert "." not in manifest.replace(".jpg", "")  # integers and strings only


@pytest.mark.parametrize("seed", range(6))
def test_planted_faces_stay_visible_and_the_rest_are_masked(seed: int) -> None:
    for item in build_batch(seed=seed).items:
        original = _pixels((PHOTOS / item.photo).read_bytes())
        shown = _pixels(item.image)
        for box in item.visible:
            assert _change(original, shown, box) < 4.0, (item.photo, box)  # JPEG noise only
        for box in item.masked:
            assert _change(original, shown, box) > 4.0, (item.photo, box)


def test_a_reviewer_box_counts_only_on_a_planted_face() -> None:
    visible = [[10, 10, 20, 20], [100, 50, 30, 30]]
    assert planted_found(visible, [(12.0, 11.0, 20.0, 21.0)]).found == 1
    assert planted_found(visible, [(200.0, 200.0, 20.0, 20.0)]).found == 0  # an unlabelled face
    both = planted_found(visible, [(10.0, 10.0, 20.0, 20.0), (101.0, 50.0, 30.0, 30.0)])
    assert (both.planted, both.found) == (2, 2)
    twice = planted_found(visible, [(10.0, 10.0, 20.0, 20.0), (11.0, 10.0, 20.0, 20.0)])
    assert twice.found == 1  # one-to-one
