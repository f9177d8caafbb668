"""Where personal data leaves, by type: every sink requires a Clearance, and the raw moves
under the sinks are made nowhere else.

This replaced a test that scanned the source for "data-moving sites" and pinned each one,
by private function name, to the enforcement point that guarded it. What holds now, none of
it tied to a private name:

1. Each sink in SINKS (the public API that moves a dataset's data: short, listed here) has a
   required parameter typed `Clearance` or `Clearances`, and each check in CHECKS returns
   one. A new sink is added to SINKS by whoever writes it (docs/architecture.md).
2. Nothing but `gateway/policy/enforcement.py` constructs a `Clearance`
   (tests/policy/test_clearance.py): a sink's clearance can only come from an allowed
   residency check.
3. The sinks check the clearance at run time against the dataset(s), the point and the
   region of the move (tests/policy/test_clearance.py, test_export_clearance.py).
4. The raw moves the sinks wrap (a blob store write or read, a task import, rendering a
   report, reading lineage records out) appear only in the modules listed in RAW_MOVES,
   each with its reason: a new use elsewhere fails here until it goes through a sink.
5. Every enforcement point is enforced somewhere (`enforce_residency(point=...)`), and the
   ingest point, which has no sink of its own, by a run-time test
   (tests/policy/test_enforcement.py::test_ingest_blocked_outside_processing_regions_keeps_nothing).
"""

from __future__ import annotations

import ast
import importlib
import inspect
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from gateway.core.clearance import Clearance, Clearances, EnforcementPoint

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("gateway", "ml_backend")

# the public functions through which a dataset's data leaves (module, qualified name)
SINKS = [
    ("gateway.core.storage", "put_cleared"),  # a blob written to a store (its region)
    ("gateway.core.storage", "get_cleared"),  # a blob read out to go onwards
    ("gateway.core.storage", "grant_storage_write"),  # the bucket store's write permit
    ("gateway.labelstudio.client", "LabelStudioClient.import_tasks"),  # tasks to Label Studio
    ("gateway.labelstudio.export", "write_export"),  # annotation export files
    ("gateway.lineage.bundle", "cleared_records"),  # lineage records read out for an export
    ("gateway.lineage.bundle", "write_bundle"),
    ("gateway.lineage.bundle", "export_bundle"),
    ("gateway.lineage.service", "write_view"),  # the OpenLineage and PROV views
    ("gateway.reports.export", "report_bytes"),  # a governance report, every format
    ("gateway.review.candidates", "candidate_image"),  # a leak candidate shown to a reviewer
]
# the checks that make what the sinks require (each through enforce_residency)
CHECKS = [
    ("gateway.policy.enforcement", "enforce_residency"),
    ("gateway.labelstudio.urls", "fetch_clearance"),
    ("gateway.labelstudio.residency_withdrawal", "enforce_or_withdraw"),
    ("gateway.lineage.service", "check_export_residency"),
    ("gateway.reports.build", "check_export_allowed"),
]
CLEARED = (Clearance, Clearances)

# raw move -> the modules that may make it, and why
RAW_MOVES: dict[str, dict[str, str]] = {
    "store.put": {
        "gateway/core/storage.py": "put_cleared, the storage sink, and the stores themselves",
        "gateway/health.py": "the readiness probe writes and deletes a blob of no dataset "
        "(`health/`, no personal data)",
    },
    "store.get": {
        "gateway/core/storage.py": "get_cleared, the read-out sink, and the stores themselves",
        "gateway/pipeline.py": "the redaction worker reads the original into its own process: "
        "in the region of ingest (checked), or a Celery worker that checked residency for its "
        "own region first (gateway/scaleout/tasks.py, tests/scaleout) and can unwrap only its "
        "region's keys",
        "gateway/review/rerender.py": "a reviewer's decision re-renders from the original in "
        "this process, as the pipeline does; the result is written with put_cleared",
        "gateway/pseudonymisation/custody.py": "key rotation re-seals a blob in place in the "
        "same store (reseal_clearance); nothing leaves the store's region",
    },
    "import_tasks": {
        "gateway/labelstudio/client.py": "LabelStudioClient.import_tasks, the sync sink",
    },
    "render": {
        "gateway/reports/export.py": "report_bytes, the report sink",
    },
    "select_records": {
        "gateway/lineage/bundle.py": "cleared_records, the lineage export's reader",
        "gateway/lineage/service.py": "asset_history: one asset's records and proofs to an "
        "authorised API caller of this gateway (not a file export)",
    },
}
# the report renderers a module may not import for export (verify compares text only)
RENDERERS = {"render", "to_json", "to_pdf", "to_html"}
RENDER_READERS = {"gateway/reports/verify.py": {"to_html"}}


def _resolve(module: str, qualname: str) -> Callable[..., Any]:
    obj: Any = importlib.import_module(module)
    for part in qualname.split("."):
        obj = getattr(obj, part)
    return typing.cast(Callable[..., Any], obj)


def _annotation(fn: Callable[..., Any], annotation: Any) -> Any:
    """A parameter's or return's annotation, evaluated in its module (names imported only
    for type checking stay unresolved: they are not the clearance types, which are imported
    at run time wherever a sink checks them)."""
    if not isinstance(annotation, str):
        return annotation
    try:
        return eval(annotation, vars(inspect.getmodule(fn)))  # noqa: S307 (our own source)
    except NameError:
        return None


@pytest.mark.parametrize(("module", "name"), SINKS, ids=[f"{m}.{n}" for m, n in SINKS])
def test_every_sink_requires_a_clearance(module: str, name: str) -> None:
    fn = _resolve(module, name)
    params = inspect.signature(fn).parameters
    required = [
        p.name
        for p in params.values()
        if _annotation(fn, p.annotation) in CLEARED and p.default is inspect.Parameter.empty
    ]
    assert required, f"{module}.{name} must take a required Clearance or Clearances parameter"


@pytest.mark.parametrize(("module", "name"), CHECKS, ids=[f"{m}.{n}" for m, n in CHECKS])
def test_every_check_returns_what_the_sinks_require(module: str, name: str) -> None:
    fn = _resolve(module, name)
    assert _annotation(fn, inspect.signature(fn).return_annotation) in CLEARED


def _sources() -> dict[str, ast.Module]:
    found = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            rel = path.relative_to(ROOT).as_posix()
            if "/migrations/" not in rel:
                found[rel] = ast.parse(path.read_text(), rel)
    return found


SOURCES = _sources()


def _raw_move(call: ast.Call) -> str | None:
    """The raw move a call makes, if any: `<...>store.put/get(...)`, the Label Studio SDK's
    task creation (`projects.import_tasks`, `tasks.create`, `create_many`),
    `select_records(...)`, `render(...)` of a report."""
    f = call.func
    if isinstance(f, ast.Attribute):
        receiver = f.value
        owner = receiver.attr if isinstance(receiver, ast.Attribute) else None
        owner = receiver.id if isinstance(receiver, ast.Name) else owner
        if f.attr in ("put", "get") and owner in ("store", "stores"):
            return f"store.{f.attr}"
        if (owner, f.attr) in (("projects", "import_tasks"), ("tasks", "create")):
            return "import_tasks"  # the Label Studio SDK's task creation
        if f.attr in ("create_many", "import_tasks_async"):
            return "import_tasks"
        return None
    if isinstance(f, ast.Name) and f.id in ("select_records", "render"):
        return f.id
    return None


def _report_render_imports(tree: ast.Module) -> set[str]:
    return {
        alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.module == "gateway.reports.render"
        for alias in node.names
        if alias.name in RENDERERS
    }


def test_raw_moves_are_made_only_under_the_sinks() -> None:
    found: dict[str, set[str]] = {move: set() for move in RAW_MOVES}
    for rel, tree in SOURCES.items():
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and (move := _raw_move(node)) is not None:
                if move == "render" and not _report_render_imports(tree):
                    continue  # another `render` (templates, metrics)
                found[move].add(rel)
    for move, allowed in RAW_MOVES.items():
        stray = found[move] - allowed.keys()
        assert not stray, f"{move} outside its sink: {sorted(stray)} (go through the sink)"
        stale = allowed.keys() - found[move]
        assert not stale, f"{move} no longer made in {sorted(stale)}: drop them from RAW_MOVES"


def test_only_the_report_sink_imports_the_renderers() -> None:
    for rel, tree in SOURCES.items():
        names = _report_render_imports(tree) - RENDER_READERS.get(rel, set())
        if rel == "gateway/reports/export.py":
            assert "render" in names
        else:
            assert not names, f"{rel} renders a report for export: use gateway.reports.export"


def _enforced_points() -> set[str]:
    points = set()
    for tree in SOURCES.values():
        for node in ast.walk(tree):
            if isinstance(node, ast.Call):
                f = node.func
                name = f.id if isinstance(f, ast.Name) else getattr(f, "attr", None)
                if name != "enforce_residency":
                    continue
                for kw in node.keywords:
                    if kw.arg == "point" and isinstance(kw.value, ast.Attribute):
                        points.add(kw.value.attr)
    return points


def test_each_point_is_enforced_somewhere() -> None:
    assert _enforced_points() >= {p.name for p in EnforcementPoint}


def test_the_raw_move_scan_sees_a_stray_write() -> None:
    """The scanner itself: a store write, a task import and a report render are found (and a
    call that moves nothing is not)."""
    tree = ast.parse(
        "from gateway.reports.render import render\n"
        "def leak(ctx, signed, sdk):\n    ctx.store.exists('k')\n    ctx.store.put('k', b'x')\n"
        "    sdk.projects.import_tasks(1, request=[])\n    return render(signed, 'json')\n"
    )
    moves = {_raw_move(n) for n in ast.walk(tree) if isinstance(n, ast.Call)}
    assert moves == {"store.put", "import_tasks", "render", None}
    assert _report_render_imports(tree) == {"render"}
