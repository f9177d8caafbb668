"""The digest of an annotation result accepts every number Label Studio writes: deterministic,
different numbers give different digests, finite floats never raise, NaN/inf are a typed error."""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.labelstudio.result_digest import (
    UnrepresentableAnnotation,
    digest_form,
    result_sha256,
)

finite = st.floats(allow_nan=False, allow_infinity=False)
numbers = finite | st.integers()
_scalars = st.none() | st.booleans() | numbers | st.text(max_size=8)
_json = st.recursive(
    _scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4)
    ),
    max_leaves=16,
)


def _region(x: float | int) -> list[dict]:
    return [
        {
            "from_name": "boxes",
            "to_name": "image",
            "type": "rectanglelabels",
            "value": {"x": x, "y": 2, "width": 3.5, "height": 4, "rectanglelabels": ["person"]},
        }
    ]


def test_label_studio_fractional_percentages_are_accepted_and_kept_apart() -> None:
    digest = result_sha256(_region(30.769230769230766))
    assert len(digest) == 64
    assert digest != result_sha256(_region(30.769230769230763))  # the next float down
    assert digest != result_sha256(_region(30))
    assert result_sha256(_region(1)) != result_sha256(_region(1.0))  # int and float differ
    assert digest_form(_region(30.769230769230766))[0]["value"]["x"] == "30.769230769230766"


@settings(max_examples=200, deadline=None)
@given(_json)
def test_the_digest_is_deterministic_and_never_raises_for_json(value) -> None:
    # what Label Studio sends is JSON text: parse it the way the gateway does
    parsed = json.loads(json.dumps(value))
    assert result_sha256([parsed]) == result_sha256([json.loads(json.dumps(value))])


@settings(max_examples=400, deadline=None)
@given(numbers, numbers)
def test_different_numbers_give_different_digests(a, b) -> None:
    same_number = type(a) is type(b) and (
        a == b and (not isinstance(a, float) or math.copysign(1, a) == math.copysign(1, b))
    )
    assert (result_sha256(_region(a)) == result_sha256(_region(b))) == same_number


@settings(max_examples=200, deadline=None)
@given(finite)
def test_every_finite_float_survives_its_json_round_trip_unchanged(x) -> None:
    text = json.dumps({"x": x})
    assert json.loads(text)["x"] == x
    assert result_sha256(_region(json.loads(text)["x"])) == result_sha256(_region(x))


@pytest.mark.parametrize("text", ['{"x": NaN}', '{"x": Infinity}', '{"x": -Infinity}'])
def test_not_finite_numbers_are_a_typed_error(text: str) -> None:
    value = json.loads(text)  # Python's json (and Label Studio's) accepts these
    with pytest.raises(UnrepresentableAnnotation) as raised:
        result_sha256([value])
    assert raised.value.code == "annotation-not-representable"
    assert raised.value.details["path"] == "$.result[0].x"


def test_text_that_is_not_unicode_is_a_typed_error() -> None:
    with pytest.raises(UnrepresentableAnnotation):
        result_sha256(json.loads('[{"text": "\\ud800"}]'))
