"""A re-render masks the engine's regions as the engine does (faces as inscribed ellipses when
the policy says so) and a reviewer's box as the whole rectangle drawn."""

from __future__ import annotations

import numpy as np

from gateway.review.rerender import mask_regions
from redaction.policy import Operator, RedactionPolicy
from redaction.types import Label, Region

WHITE = np.full((100, 200, 3), 255, dtype=np.uint8)


def _policy(*, ellipse: bool) -> RedactionPolicy:
    base = RedactionPolicy(operator=Operator.FILL)
    return base.model_copy(update={"faces": base.faces.model_copy(update={"ellipse": ellipse})})


def test_engine_faces_are_ellipses_and_reviewer_boxes_rectangles() -> None:
    engine_face = Region(Label.FACE, 10, 10, 60, 80, 0.9, "yunet")
    reviewer_face = Region(Label.FACE, 120, 10, 60, 80, 1.0, "reviewer")
    out = mask_regions(WHITE, [engine_face], [reviewer_face], policy=_policy(ellipse=True))
    assert out[50, 40].tolist() == [0, 0, 0]  # the ellipse's centre
    assert out[10, 10].tolist() == [255, 255, 255]  # its box's corner stays as it was
    assert out[50, 150].tolist() == [0, 0, 0]
    assert out[10, 120].tolist() == [0, 0, 0]  # the reviewer's corner is masked too
    assert out[89, 179].tolist() == [0, 0, 0]


def test_a_policy_without_ellipses_masks_engine_faces_as_rectangles() -> None:
    engine_face = Region(Label.FACE, 10, 10, 60, 80, 0.9, "yunet")
    out = mask_regions(WHITE, [engine_face], [], policy=_policy(ellipse=False))
    assert out[10, 10].tolist() == [0, 0, 0]
