"""The decode path and the release gate make of every file in the corpus exactly what they made
when the golden file was recorded: the same completeness verdict and notes, the same decoded
pixels, the same inventory, the same typed errors. It was first recorded from the two separate
walkers, before they became one (`redaction.containers`); a deliberate change regenerates it
(`container_golden.py`) in its own commit, which names the cases that changed."""

from __future__ import annotations

import json

from tests.redaction.container_corpus import build
from tests.redaction.container_golden import GOLDEN, observe


def test_every_case_gives_the_recorded_result() -> None:
    expected = json.loads(GOLDEN.read_text())
    corpus = build()
    assert sorted(corpus) == sorted(expected)
    changed = [
        f"{name} {field}: {expected[name][field]!r} -> {seen[field]!r}"
        for name, data in corpus.items()
        for seen in [observe(data)]
        for field in seen
        if seen[field] != expected[name][field]
    ]
    assert not changed, f"{len(changed)} of {len(corpus)} cases changed:\n" + "\n".join(
        changed[:40]
    )
