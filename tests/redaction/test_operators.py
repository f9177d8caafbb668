"""Irreversible masking (redaction.operators): changed inside every region, untouched outside."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from redaction.leakcheck import mask_of
from redaction.operators import ELLIPSE_MIN_SIDE, apply
from redaction.policy import Operator
from redaction.types import Label, Region

NO_ELLIPSE: frozenset[Label] = frozenset()


def checkerboard(height: int, width: int, seed: int = 0) -> np.ndarray:
    """One-pixel checkerboard of a dark and a light random tint: detail in every pixel."""
    rng = np.random.default_rng(seed)
    dark = rng.integers(0, 61, (height, width, 3))
    light = rng.integers(195, 256, (height, width, 3))
    parity = (np.add.outer(np.arange(height), np.arange(width)) % 2).astype(bool)
    return np.where(parity[..., None], light, dark).astype(np.uint8)


def region(x: int, y: int, w: int, h: int, label: Label = Label.PLATE) -> Region:
    return Region(label, x, y, w, h, 0.9, "test")


def box_mask(shape: tuple[int, ...], regions: list[Region]) -> np.ndarray:
    mask = np.zeros(shape[:2], bool)
    for r in regions:
        mask[max(0, r.y) : r.y + r.h, max(0, r.x) : r.x + r.w] = True
    return mask


def changed(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.asarray((a != b).any(axis=2))


@pytest.mark.parametrize("operator", list(Operator))
def test_inside_changed_outside_identical_input_untouched(operator: Operator) -> None:
    image = checkerboard(120, 160)
    before = image.copy()
    regions = [region(10, 10, 40, 30), region(100, 60, 50, 50), region(30, 25, 30, 40)]
    out = apply(image, regions, operator=operator, ellipse_labels=NO_ELLIPSE)
    assert np.array_equal(image, before)
    assert out is not image and out.shape == image.shape and out.dtype == np.uint8
    inside = box_mask(image.shape, regions)
    assert changed(out, image)[inside].all()
    assert np.array_equal(out[~inside], image[~inside])


def test_fill_is_black_whatever_the_content() -> None:
    out = apply(checkerboard(50, 50), [region(5, 5, 20, 30)], operator=Operator.FILL)
    assert (out[5:35, 5:25] == 0).all()


def test_blur_keeps_no_detail_finer_than_its_cells() -> None:
    # A checkerboard and a flat grey of the same mean must come out (almost) the same.
    board = np.where(checkerboard(90, 90) > 127, 255, 0).astype(np.uint8)
    grey = np.full_like(board, 128)
    box = [region(0, 0, 90, 90)]
    blurred_board = apply(board, box, operator=Operator.BLUR).astype(int)
    blurred_grey = apply(grey, box, operator=Operator.BLUR).astype(int)
    assert np.abs(blurred_board - blurred_grey).max() <= 2


def test_blur_removes_a_drawn_text_line() -> None:
    image = np.full((60, 200, 3), 255, np.uint8)
    cv2.putText(image, "AB 123 CD", (5, 40), cv2.FONT_HERSHEY_SIMPLEX, 1.2, (0, 0, 0), 3)
    out = apply(image, [region(0, 0, 200, 60)], operator=Operator.BLUR)
    edges_before = np.abs(cv2.Laplacian(image, cv2.CV_32F)).mean()
    edges_after = np.abs(cv2.Laplacian(out, cv2.CV_32F)).mean()
    assert edges_after < edges_before / 20


def test_pixelate_blocks_scale_with_region() -> None:
    rng = np.random.default_rng(1)
    image = rng.integers(0, 256, (200, 200, 3), dtype=np.uint8)
    out = apply(image, [region(0, 0, 160, 160)], operator=Operator.PIXELATE)
    row = out[80, :160, 0]
    runs = 1 + int(np.count_nonzero(np.diff(row.astype(int))))
    assert runs <= 5  # blocks of 160 / 5 = 32 px
    tiny = apply(image, [region(0, 0, 12, 12)], operator=Operator.PIXELATE)
    assert 1 + int(np.count_nonzero(np.diff(tiny[5, :12, 0].astype(int)))) <= 3  # >= 4 px blocks


@pytest.mark.parametrize("operator", [Operator.BLUR, Operator.PIXELATE])
@pytest.mark.parametrize("size", [2, 3, 5, 9])
def test_tiny_regions_still_change_noticeably(operator: Operator, size: int) -> None:
    image = checkerboard(20, 20)
    out = apply(image, [region(4, 4, size, size)], operator=operator)
    inside = out[4 : 4 + size, 4 : 4 + size].astype(int) - image[4 : 4 + size, 4 : 4 + size]
    assert (np.abs(inside).max(axis=2) >= 40).all()


def test_face_ellipse_leaves_box_corners_and_covers_the_original_box() -> None:
    image = checkerboard(200, 200)
    face = region(70, 60, 60, 80, Label.FACE)
    grown = face.expanded(0.3, width=200, height=200)
    out = apply(image, [grown], operator=Operator.BLUR)
    diff = changed(out, image)
    assert diff[face.y : face.y + face.h, face.x : face.x + face.w].all()
    assert not diff[grown.y, grown.x] and not diff[grown.y + grown.h - 1, grown.x + grown.w - 1]
    assert not diff[~box_mask(image.shape, [grown])].any()
    rect = apply(image, [grown], operator=Operator.BLUR, ellipse_labels=NO_ELLIPSE)
    assert changed(rect, image)[box_mask(image.shape, [grown])].all()


def test_face_boxes_clipped_at_the_edge_are_masked_whole() -> None:
    # A face at the top edge: its grown box is clipped, and the ellipse of the clipped box
    # would cut through the face's top corners.
    image = checkerboard(120, 120)
    face = region(40, 2, 40, 50, Label.FACE)
    grown = face.expanded(0.3, width=120, height=120)
    assert grown.y == 0
    out = apply(image, [grown], operator=Operator.BLUR)
    assert changed(out, image)[box_mask(image.shape, [grown])].all()
    unclipped = region(28, -13, 64, 80, Label.FACE)  # grown but not clipped: true ellipse
    out = apply(image, [unclipped], operator=Operator.BLUR)
    assert changed(out, image)[2:52, 40:80].all()
    assert not changed(out, image)[66, 28]


def test_small_face_boxes_are_masked_whole() -> None:
    image = checkerboard(30, 30)
    out = apply(image, [region(10, 10, 6, 7, Label.FACE)], operator=Operator.FILL)
    assert (out[10:17, 10:16] == 0).all()


@pytest.mark.parametrize(
    ("side", "whole"), [(ELLIPSE_MIN_SIDE - 1, True), (ELLIPSE_MIN_SIDE, False)]
)
def test_face_boxes_under_the_ellipse_side_are_masked_whole(side: int, whole: bool) -> None:
    # A face of a few pixels sits in a grown box of ~20 px: the ellipse's corners missed it.
    image = checkerboard(80, 80)
    face = region(20, 20, side, side + 4, Label.FACE)
    out = apply(image, [face], operator=Operator.FILL)
    assert bool((out[20, 20] == 0).all()) is whole  # the box's corner
    assert (out[20 + side // 2, 20 + side // 2] == 0).all()
    # The leak check's view of the masks follows the same rule.
    mask = mask_of([face], width=80, height=80, ellipse_labels=frozenset({Label.FACE}))
    assert np.array_equal(mask, (out == 0).all(axis=2) & box_mask(image.shape, [face]))


def test_regions_outside_or_empty_are_clipped() -> None:
    image = checkerboard(40, 40)
    regions = [region(-10, -10, 20, 20), region(35, 35, 20, 20), region(5, 5, 0, 9)]
    out = apply(image, regions, operator=Operator.PIXELATE)
    assert changed(out, image)[box_mask(image.shape, regions)].all()
    assert np.array_equal(out[10:35, 10:35], image[10:35, 10:35])
    assert np.array_equal(apply(image, [], operator=Operator.BLUR), image)


def test_refuses_non_bgr_input() -> None:
    with pytest.raises(ValueError, match="HxWx3"):
        apply(np.zeros((5, 5), np.uint8), [], operator=Operator.BLUR)


@st.composite
def scenes(draw: st.DrawFn) -> tuple[np.ndarray, list[Region]]:
    height = draw(st.integers(8, 90))
    width = draw(st.integers(8, 90))
    image = checkerboard(height, width, seed=draw(st.integers(0, 2**16)))
    regions = []
    for _ in range(draw(st.integers(0, 6))):
        x, y = draw(st.integers(0, width - 1)), draw(st.integers(0, height - 1))
        w, h = draw(st.integers(1, width - x)), draw(st.integers(1, height - y))
        regions.append(region(x, y, w, h, draw(st.sampled_from(list(Label)))))
    return image, regions


def ellipse_or_box_mask(shape: tuple[int, ...], r: Region) -> np.ndarray:
    mask = box_mask(shape, [r])
    on_edge = r.x == 0 or r.y == 0 or r.x + r.w == shape[1] or r.y + r.h == shape[0]
    if r.label is Label.FACE and min(r.w, r.h) >= 8 and not on_edge:
        ys, xs = np.mgrid[0 : shape[0], 0 : shape[1]]
        norm = ((xs + 0.5 - r.x - r.w / 2) / (r.w / 2)) ** 2
        norm += ((ys + 0.5 - r.y - r.h / 2) / (r.h / 2)) ** 2
        mask &= norm <= 1.0
    return mask


@settings(max_examples=80, deadline=None)
@given(scene=scenes(), operator=st.sampled_from(list(Operator)))
def test_property_outside_unchanged_inside_changed(
    scene: tuple[np.ndarray, list[Region]], operator: Operator
) -> None:
    image, regions = scene
    before = image.copy()
    out = apply(image, regions, operator=operator)
    assert np.array_equal(image, before)
    outside = ~box_mask(image.shape, regions)
    assert np.array_equal(out[outside], image[outside])
    masked = np.zeros(image.shape[:2], bool)
    for r in regions:
        if r.w * r.h >= 2:  # a single pixel is its own mean: nothing to hide in it
            masked |= ellipse_or_box_mask(image.shape, r)
    if operator is Operator.FILL:
        assert (out[masked] == 0).all()
    else:
        assert changed(out, image)[masked].all()
