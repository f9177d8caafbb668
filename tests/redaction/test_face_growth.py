"""Extra growth for weak face detections (redaction.face_growth): a face the detector is unsure
of (half behind a mask, a hand or another head) gets a wider mask, so a box that is too small
or off-centre still covers the face; confident faces and other labels keep the policy margin."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest

from redaction import face_growth, operators
from redaction.engine import grow
from redaction.leakcheck import coverage, mask_of
from redaction.policy import Operator, RedactionPolicy
from redaction.types import Label, Region

W, H = 200, 160


@pytest.fixture
def steps() -> Iterator[None]:
    """The shipped steps, restored after a test that changes them."""
    saved = face_growth.WEAK_FACE_STEPS
    yield
    face_growth.WEAK_FACE_STEPS = saved


def face(score: float, x: int = 80, y: int = 60, w: int = 20, h: int = 20) -> Region:
    return Region(Label.FACE, x, y, w, h, score, "centerface")


def test_weak_faces_get_more_margin_than_confident_ones() -> None:
    assert face_growth.WEAK_FACE_STEPS, "on by default"
    cut, extra = face_growth.WEAK_FACE_STEPS[0]
    assert face_growth.extra_margin(face(cut - 0.01)) == extra
    assert face_growth.extra_margin(face(cut)) == 0.0
    assert face_growth.extra_margin(face(0.9)) == 0.0
    assert face_growth.extra_margin(Region(Label.PLATE, 0, 0, 40, 10, 0.01, "plates")) == 0.0


def test_the_largest_applicable_step_counts(steps: None) -> None:
    face_growth.WEAK_FACE_STEPS = ((0.5, 0.1), (0.2, 0.3))
    assert face_growth.extra_margin(face(0.1)) == 0.3
    assert face_growth.extra_margin(face(0.3)) == 0.1
    assert face_growth.extra_margin(face(0.6)) == 0.0
    face_growth.WEAK_FACE_STEPS = ()
    assert face_growth.extra_margin(face(0.01)) == 0.0


def test_grow_adds_the_extra_margin_on_every_side_and_keeps_the_top_share() -> None:
    policy = RedactionPolicy()
    extra = face_growth.WEAK_FACE_STEPS[0][1]
    strong = grow(face(0.9), policy=policy, width=W, height=H)
    weak = grow(face(0.1), policy=policy, width=W, height=H)
    dx = round(20 * extra)
    assert weak.w - strong.w == pytest.approx(2 * dx, abs=1)
    assert strong.x - weak.x == pytest.approx(dx, abs=1)
    below, above = weak.y + weak.h - (strong.y + strong.h), strong.y - weak.y
    assert below > above >= 0  # less above the box, as for the policy margin
    assert weak.x >= 0 and weak.x + weak.w <= W  # still clipped to the image


def test_a_weak_off_centre_box_still_masks_the_face() -> None:
    """A half-hidden face whose box came out too small and low: with the extra growth the
    blurred ellipse covers the face's true box, without it it leaves the brow and a side."""
    policy = RedactionPolicy()
    true_face = Region(Label.FACE, 70, 50, 24, 26, 1.0, "truth")
    detected = face(0.1, x=73, y=55, w=18, h=18)  # the lower, visible part only
    ellipse = frozenset({Label.FACE})
    image = np.full((H, W, 3), 255, np.uint8)
    image[::2, ::2] = 0  # texture for the blur to change
    covered = {}
    for on in (False, True):
        saved = face_growth.WEAK_FACE_STEPS
        face_growth.WEAK_FACE_STEPS = saved if on else ()
        try:
            region = grow(detected, policy=policy, width=W, height=H)
        finally:
            face_growth.WEAK_FACE_STEPS = saved
        out = operators.apply(image, [region], operator=Operator.BLUR, ellipse_labels=ellipse)
        changed = (out != image).any(axis=2)
        masked = mask_of([region], width=W, height=H, ellipse_labels=ellipse)
        assert not changed[~masked].any(), "nothing outside the mask changes"
        covered[on] = coverage(true_face, masked)
    assert covered[True] >= 0.9 > covered[False]
