"""Every tampered input to the bundle verifier gets a typed error (IntegrityFailure and its
subclasses), never a traceback: each field of each line of a real bundle (full and partial)
replaced by values of the wrong type, and lines cut short or replaced by other JSON."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gateway.core.clearance import Clearance, Clearances, EnforcementPoint
from gateway.core.db import transaction
from gateway.core.errors import IntegrityFailure
from gateway.lineage import Actor, append
from gateway.lineage.bundle import BundleFilter, export_bundle
from gateway.lineage.checkpoints import create_checkpoint
from gateway.lineage.format.verify import Anchor, verify_bundle
from gateway.lineage.signing import rotate_signing_key

pytestmark = pytest.mark.db
WRONG = [None, -1, 1.5, True, "", "00" * 32, [], [1], {"a": 1}, 10**30]
LINES = ["5", "null", '"x"', "[]", "{}"]
# the records name a dataset "d" that is no row (no policy to check): cleared by hand
CLEARED = Clearances((Clearance("d", EnforcementPoint.EXPORT, "eu-de", "test@1"),))


def _records(ctx: Any, n: int) -> None:
    with transaction(ctx.engine) as s:
        for i in range(n):
            append(
                s,
                action="test.event",
                entity_type="asset",
                entity_id=f"e{i % 2}",
                actor=Actor("system", "test"),
                now=ctx.clock(),
                region="eu-de",
                dataset_id="d",
                parameters={"i": i},
            )


def _paths(obj: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    items = (
        obj.items()
        if isinstance(obj, dict)
        else enumerate(obj[:2])
        if isinstance(obj, list)
        else []
    )
    for key, value in items:
        yield (*prefix, key)
        yield from _paths(value, (*prefix, key))


def _set(obj: Any, path: tuple[Any, ...], value: Any) -> Any:
    target = obj
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return obj


def _mutations(lines: list[str]) -> Iterator[list[str]]:
    for i, line in enumerate(lines):
        for path in _paths(json.loads(line)):
            for value in WRONG:
                changed = json.dumps(_set(json.loads(line), path, value), separators=(",", ":"))
                yield [*lines[:i], changed, *lines[i + 1 :]]
        for other in [line[: len(line) // 2], *LINES]:
            yield [*lines[:i], other, *lines[i + 1 :]]


def test_every_tampered_bundle_gets_a_typed_error(ctx, tmp_path: Path) -> None:
    _records(ctx, 3)
    with transaction(ctx.engine) as s:
        create_checkpoint(ctx, s)
    with transaction(ctx.engine) as s:
        rotate_signing_key(ctx, s, actor=Actor("cli", "test"))
    _records(ctx, 2)
    cases = 0
    for name, flt in (("full", BundleFilter()), ("partial", BundleFilter(entity_id="e1"))):
        path = tmp_path / f"{name}.jsonl"
        with transaction(ctx.engine) as s:
            export_bundle(ctx, s, path, flt, clearances=CLEARED, to_region="eu-de")
        lines = path.read_text().splitlines()
        assert verify_bundle(path, anchor=Anchor()).records > 0
        mutated = tmp_path / "mutated.jsonl"
        for variant in _mutations(lines):
            mutated.write_text("\n".join(variant) + "\n")
            cases += 1
            try:
                verify_bundle(mutated, anchor=Anchor())
            except IntegrityFailure:
                pass  # typed; anything else fails the test with its traceback
    assert cases > 1000
