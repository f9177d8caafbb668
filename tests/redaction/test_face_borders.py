"""Faces at the image border: the mirrored context the face network sees, the filter that keeps
mirror copies out, edge snapping of grown boxes, and a real face cut by the edge getting masked."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from redaction.detectors import borders
from redaction.detectors.borders import centres_inside, pad_for_borders
from redaction.detectors.faces import CenterFaceDetector
from redaction.engine import redact_bytes, snapped_to_edges
from redaction.policy import LeakCheckPolicy, PlatePolicy, RedactionPolicy
from redaction.registry import DetectorSet
from redaction.types import BGRImage, Label, Region

PHOTO = Path(__file__).resolve().parents[1] / "data" / "photos" / "masks_maksssksksss561.jpg"
FACE = (81, 163, 103, 116)
"""x, y, w, h of the face in PHOTO (its gt.json)."""


def gradient(height: int, width: int) -> BGRImage:
    ys, xs = np.mgrid[0:height, 0:width]
    return np.dstack([xs % 256, ys % 256, (xs + ys) % 256]).astype(np.uint8)


@pytest.mark.parametrize("size", [(225, 400), (226, 400), (256, 416), (1, 1), (300, 301)])
def test_end_context_is_the_images_mirror_in_the_alignment_room(size: tuple[int, int]) -> None:
    image = gradient(*size)
    padded, left, top = pad_for_borders(image, minimum=0, mode="reflect", place="end")
    assert (left, top) == (0, 0)
    assert padded.shape[0] % 32 == 0 and padded.shape[1] % 32 == 0
    assert padded.shape[0] - size[0] < 32 and padded.shape[1] - size[1] < 32
    assert np.array_equal(padded[: size[0], : size[1]], image)
    extra_h, extra_w = padded.shape[0] - size[0], padded.shape[1] - size[1]
    expected = np.pad(image, ((0, extra_h), (0, extra_w), (0, 0)), mode="reflect")
    if min(size) > 32:  # numpy and OpenCV agree on reflect-101 when the image is wide enough
        assert np.array_equal(padded, expected)


@pytest.mark.parametrize("minimum", [0, 3, 8, 16])
@pytest.mark.parametrize("size", [(225, 400), (198, 400), (400, 301), (64, 64)])
def test_both_sides_context_keeps_the_grid_and_the_minimum(
    size: tuple[int, int], minimum: int
) -> None:
    image = gradient(*size)
    padded, left, top = pad_for_borders(image, minimum=minimum, mode="constant", place="both")
    right = padded.shape[1] - size[1] - left
    bottom = padded.shape[0] - size[0] - top
    assert min(left, top, right, bottom) >= minimum
    assert left % 4 == 0 and top % 4 == 0  # the network's stride: same output grid
    assert np.array_equal(padded[top : top + size[0], left : left + size[1]], image)
    assert not padded[:top].any() and not padded[:, :left].any()


def test_negative_context_is_refused() -> None:
    with pytest.raises(ValueError, match="minimum"):
        pad_for_borders(gradient(10, 10), minimum=-1, mode="reflect")
    with pytest.raises(ValueError, match="border_pad"):
        CenterFaceDetector(border_pad=-2)


def test_only_candidates_centred_in_the_image_count() -> None:
    boxes = np.array(
        [
            [10, 10, 30, 30, 0.9],  # inside
            [-30, 10, -6, 30, 0.9],  # a mirror copy left of the image: centre at -18
            [-12, 10, 4, 30, 0.9],  # centre at -4: on the edge within one grid cell
            [390, 200, 420, 240, 0.9],  # centre at (405, 220): past the right edge
        ],
        np.float32,
    )
    kept = centres_inside(boxes, (0, 0, 400, 225))
    assert kept.tolist() == [True, False, True, False]
    assert borders.CENTRE_TOLERANCE == 4.0


def test_padding_leaves_boxes_in_image_pixels() -> None:
    """The same face, far from every edge, is found at the same place with and without
    context (boxes are shifted back by the pad)."""
    photo = cv2.imread(str(PHOTO))
    assert photo is not None
    x, y, w, h = FACE
    found = {}
    for pad, place in ((None, "end"), (0, "end"), (8, "both")):
        detector = CenterFaceDetector(quantized=True, border_pad=pad, border_place=place)
        boxes = detector.boxes(np.asarray(photo, np.uint8))
        best = boxes[np.argmax(boxes[:, 4])]
        found[(pad, place)] = best[:4]
        centre = ((best[0] + best[2]) / 2, (best[1] + best[3]) / 2)
        assert x < centre[0] < x + w and y < centre[1] < y + h
    reference = found[(None, "end")]
    for box in found.values():
        assert np.abs(box - reference).max() < 0.15 * w


def test_edge_snap_extends_a_box_that_nearly_touches_the_edge() -> None:
    detected = Region(Label.FACE, 6, 100, 20, 20, 0.9, "t")
    grown = Region(Label.FACE, 3, 95, 26, 30, 0.9, "t")
    assert snapped_to_edges(grown, detected, 400, 300, share=0.0) == grown
    snapped = snapped_to_edges(grown, detected, 400, 300, share=0.25)
    assert (snapped.x, snapped.y, snapped.w, snapped.h) == (0, 95, 29, 30)
    far = snapped_to_edges(grown, detected, 400, 300, share=0.1)  # 3 px > 0.1 * 20
    assert far == grown


@pytest.mark.parametrize(("side", "visible"), [("right", 0.5), ("right", 0.7), ("bottom", 0.5)])
def test_a_real_face_cut_by_the_edge_is_masked(side: str, visible: float) -> None:
    """A photo cropped through a face: the part of the face left in the picture is masked."""
    photo = cv2.imread(str(PHOTO))
    assert photo is not None
    x, y, w, h = FACE
    if side == "right":
        crop = photo[:, : round(x + visible * w)]
        box = (x, y, crop.shape[1], y + h)
    else:
        crop = photo[: round(y + visible * h)]
        box = (x, y, x + w, crop.shape[0])
    ok, data = cv2.imencode(".png", crop)
    assert ok
    policy = RedactionPolicy(
        plates=PlatePolicy(enabled=False), leak_check=LeakCheckPolicy(enabled=False)
    )
    detectors = DetectorSet(faces=CenterFaceDetector(quantized=True))
    result = redact_bytes(data.tobytes(), policy=policy, detectors=detectors, output_format=None)
    assert result.data is not None
    out = cv2.imdecode(np.frombuffer(result.data, np.uint8), cv2.IMREAD_COLOR)
    assert out is not None and out.shape == crop.shape
    x0, y0, x1, y1 = box
    changed = np.any(out[y0:y1, x0:x1] != crop[y0:y1, x0:x1], axis=2)
    assert changed.mean() >= 0.9
