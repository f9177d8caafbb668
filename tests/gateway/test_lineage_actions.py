"""The `Action` enum is the one home of lineage action names, and the recorder holds each
record to its action's shape: scanned over the syntax tree of the whole code base, and tried
with records that do not fit."""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlmodel import select

from gateway.core.db import transaction
from gateway.core.models import AssetState, LineageRecord
from gateway.lineage import Action, Actor, LineagePayloadError, append, recorder, recorder_at
from gateway.lineage.actions import SHAPES
from gateway.lineage.tables import LineageOutbox

ROOT = Path(__file__).resolve().parents[2]
MEMBERS = {a.value for a in Action}
LOOKS_LIKE_ACTION = re.compile(r"^[a-z][a-z0-9_-]*\.[a-z][a-z0-9_-]*$")
FAMILIES = {v.split(".", 1)[0] for v in MEMBERS}
ACTOR = Actor("system", "test")
T0 = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)


def _modules(*packages: str) -> Iterator[tuple[Path, ast.Module]]:
    for package in packages:
        for path in sorted((ROOT / package).rglob("*.py")):
            if "migrations" not in path.parts:  # a migration keeps the names of its day
                yield path, ast.parse(path.read_text(), filename=str(path))


def _is_ledger_append(call: ast.Call) -> bool:
    return isinstance(call.func, ast.Name) and call.func.id == "append"


def _action_literals(tree: ast.Module) -> Iterator[tuple[int, str, bool]]:
    """(line, literal, written by a direct ledger `append`) for each string literal in an
    action's place: passed as `action=`, compared with an `.action` or `["action"]`, or held
    under an "action" key."""

    def is_action(node: ast.AST) -> bool:
        return (isinstance(node, ast.Attribute) and node.attr == "action") or (
            isinstance(node, ast.Subscript)
            and isinstance(node.slice, ast.Constant)
            and node.slice.value == "action"
        )

    def strings(node: ast.AST) -> list[str]:
        items = node.elts if isinstance(node, ast.Tuple | ast.List | ast.Set) else [node]
        return [c.value for c in items if isinstance(c, ast.Constant) and isinstance(c.value, str)]

    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            for kw in node.keywords:
                if kw.arg == "action":
                    for s in strings(kw.value):
                        yield node.lineno, s, _is_ledger_append(node)
        elif isinstance(node, ast.Compare) and any(
            is_action(x) for x in (node.left, *node.comparators)
        ):
            for x in (node.left, *node.comparators):
                for s in strings(x):
                    yield node.lineno, s, False
        elif isinstance(node, ast.Dict):
            for key, value in zip(node.keys, node.values, strict=True):
                if isinstance(key, ast.Constant) and key.value == "action" and value is not None:
                    for s in strings(value):
                        yield node.lineno, s, False


def test_every_action_string_in_the_code_is_an_enum_member() -> None:
    """Service code names actions only through `Action`; tests may spell a member's value (an
    independent pin of the recorded bytes) and may write synthetic names only straight through
    the format-level `ledger.append`, then read back those same names."""
    offences = []
    for path, tree in _modules("gateway", "ml_backend"):
        if path.name == "actions.py":
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and node.value in MEMBERS:
                offences.append(f"{path.relative_to(ROOT)}:{node.lineno}: {node.value!r}")
        for line, literal, _ in _action_literals(tree):
            if LOOKS_LIKE_ACTION.match(literal):
                offences.append(f"{path.relative_to(ROOT)}:{line}: {literal!r}")
    for path, tree in _modules("tests"):
        found = list(_action_literals(tree))
        synthetic = {s for _, s, direct in found if direct and s not in MEMBERS}
        offences += [
            f"{path.relative_to(ROOT)}:{line}: {literal!r}"
            for line, literal, _ in found
            if LOOKS_LIKE_ACTION.match(literal)
            and literal.split(".", 1)[0] in FAMILIES | {"test"}
            and literal not in MEMBERS | synthetic
        ]
    assert offences == []


def test_service_code_writes_lineage_only_through_the_recorder() -> None:
    """No hand-written `append(...)` outside the lineage package: the recorder is the writer."""
    direct = [
        f"{path.relative_to(ROOT)}:{node.lineno}"
        for path, tree in _modules("gateway", "ml_backend")
        if path.parent.name != "lineage" or path.name not in {"ledger.py", "writer.py"}
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and _is_ledger_append(node) and node.keywords
    ]
    assert direct == []


def test_every_action_has_a_shape_and_every_state_an_action() -> None:
    assert set(SHAPES) == set(Action)
    assert {Action.entered(s).value for s in AssetState} <= MEMBERS


@pytest.mark.db
def test_a_missing_payload_key_is_refused_before_anything_is_written(ctx) -> None:
    with transaction(ctx.engine) as s:
        writer = recorder(ctx, s, ACTOR)
        with pytest.raises(LineagePayloadError) as info:
            writer.record(
                Action.ASSET_ORIGINAL_DELETED, entity="a1", dataset="d1", parameters={"rule": "x"}
            )
        with pytest.raises(LineagePayloadError, match="outputs redacted_sha256"):
            writer.record(
                Action.REVIEW_CALIBRATION_OPENED,
                entity="a1",
                parameters={"review_item": 1, "seed": 2, "photo_sha256": "f", "planted": 1},
            )
    assert info.value.code == "lineage-payload-shape"
    assert info.value.details == {
        "action": "asset.original_deleted",
        "section": "parameters",
        "missing": ["state"],
    }
    with transaction(ctx.engine) as s:
        assert s.exec(select(LineageRecord)).all() == []
        assert s.exec(select(LineageOutbox)).all() == []


@pytest.mark.db
def test_an_entity_the_action_does_not_describe_is_refused(ctx) -> None:
    with transaction(ctx.engine) as s:
        writer = recorder(ctx, s, ACTOR)
        with pytest.raises(LineagePayloadError, match="describes a api-key, not a dataset"):
            writer.record(Action.API_KEY_REVOKED, entity="k1", entity_type="dataset")
        with pytest.raises(LineagePayloadError, match="entity type named"):
            writer.record(
                Action.RESIDENCY_BLOCKED, entity="a1", parameters={"rule": "r", "point": "p"}
            )
        with pytest.raises(LineagePayloadError, match="not a lineage Action"):
            writer.record("api-key.revoked", entity="k1")  # type: ignore[arg-type]


@pytest.mark.db
def test_the_recorder_writes_the_bytes_a_hand_written_append_wrote(ctx) -> None:
    """Same values, same record: only the random record id differs."""
    values = {
        "inputs": {"original_keyed_digest": "ab"},
        "parameters": {"format": "jpeg", "bytes": 3},
    }
    with transaction(ctx.engine) as s:
        old = append(
            s,
            action="asset.received",
            entity_type="asset",
            entity_id="a1",
            dataset_id="d1",
            actor=ACTOR,
            now=T0,
            region="eu-de",
            **values,
        )
        new = recorder_at(s, actor=ACTOR, region="eu-de", now=T0).record(
            Action.ASSET_RECEIVED, entity="a1", dataset="d1", **values
        )
    with transaction(ctx.engine) as s:
        rows = s.exec(select(LineageRecord).order_by(LineageRecord.seq)).all()
    bodies = [json.loads(r.payload) for r in rows]
    for body in bodies:
        body.pop("record_id"), body.pop("seq"), body.pop("prev")
    assert bodies[0] == bodies[1]
    assert [r.action for r in rows] == ["asset.received", "asset.received"]
    assert old.body["time"] == new.body["time"] == "2026-12-02T12:00:00.000000+00:00"


@pytest.mark.db
def test_the_bound_clock_and_region_stamp_each_record(ctx, clock) -> None:
    with transaction(ctx.engine) as s:
        writer = recorder(ctx, s, ACTOR)
        first = writer.record(Action.API_KEY_REVOKED, entity="k1")
        clock.advance(seconds=5)
        second = writer.by(Actor("cli", "operator")).record(Action.API_KEY_REVOKED, entity="k2")
    assert first.body["region"] == second.body["region"] == ctx.settings.region
    assert first.body["time"] != second.body["time"]
    assert second.body["actor"] == {"kind": "cli", "id": "operator"}
