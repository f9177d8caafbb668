"""The decode path and the release gate make of every file in the corpus exactly what they made
before their container walkers became one (`redaction.containers`): the same completeness
verdict and notes, the same decoded pixels, the same inventory, the same typed errors. The
expected results were recorded from the two separate walkers by `container_golden.py`; a
deliberate change regenerates them in its own commit, which names each case that changed."""

from __future__ import annotations

import json
from functools import cache

import pytest

from tests.redaction.container_corpus import build
from tests.redaction.container_golden import GOLDEN, observe

EXPECTED = json.loads(GOLDEN.read_text())


@cache
def _corpus() -> dict[str, bytes]:
    return build()


def test_the_corpus_is_the_one_recorded() -> None:
    assert sorted(_corpus()) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_walkers_agree_with_the_recording(name: str) -> None:
    data = _corpus()[name]
    seen = observe(data)
    assert seen["input"] == EXPECTED[name]["input"], "the corpus bytes changed: Pillow/OpenCV?"
    assert seen == EXPECTED[name]
