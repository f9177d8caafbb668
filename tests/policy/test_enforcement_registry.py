"""No code path moves data without passing its residency check.

A static scan finds every place in `gateway/` and `ml_backend/` that moves data (writes to the
blob store, reads a blob out to the ML backend or an export, writes an export file, creates
Label Studio tasks). Each must be in REGISTRY with the enforcement point that guards it, and
the scan proves it is guarded: its function reaches `enforce_residency(point=...)` through
the call graph, or every function calling it does. Places that move nothing across a region
boundary are listed in EXEMPT with the reason. A new data-moving path fails this test until
it is checked and registered.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import pytest

from gateway.policy.enforcement import EnforcementPoint

ROOT = Path(__file__).resolve().parents[2]
P = EnforcementPoint

# where data moves -> the point that must guard it
REGISTRY: dict[str, EnforcementPoint] = {
    "gateway/ingest.py::ingest_upload": P.INGEST,
    "gateway/ingest.py::_record_acceptance": P.STORAGE_WRITE,
    "gateway/pipeline.py::_record_outcome": P.STORAGE_WRITE,
    "ml_backend/images.py::fetch": P.ML_BACKEND,
    "gateway/ml_images.py::redacted_for_ml": P.ML_BACKEND,
    "gateway/lineage/service.py::_write_view": P.EXPORT,
    "gateway/cli/reports.py::report": P.EXPORT,
    "gateway/labelstudio/client.py::import_tasks": P.SYNC,
    "gateway/labelstudio/sync.py::_import_batch": P.SYNC,
    "gateway/labelstudio/urls.py::resolve_image": P.SYNC,
    "gateway/labelstudio/local_files.py::local_file_url": P.SYNC,
    "gateway/reports/demo_reports.py::write_demo_reports": P.EXPORT,
    "gateway/demo.py::_report": P.EXPORT,
    "gateway/review/project.py::push_review_tasks": P.SYNC,
    "gateway/review/images.py::resolve_review_image": P.SYNC,
    "gateway/review/rerender.py::_record": P.STORAGE_WRITE,
    "gateway/review/calibration.py::_calibration_asset": P.STORAGE_WRITE,
    "gateway/review/candidates.py::keep_candidate": P.STORAGE_WRITE,
}
EXEMPT: dict[str, str] = {
    "gateway/health.py::storage_writable": "readiness writes and deletes a probe blob that "
    "belongs to no dataset (no personal data)",
    "gateway/pipeline.py::run_job": "reads the original into this gateway's own redaction "
    "worker: in the embedded runner the region of ingest, which was checked; a Celery worker "
    "checks residency for its own region first (gateway/scaleout/tasks.py::refusal_for, "
    "tests/scaleout) and can unwrap only its region's keys",
    "gateway/pseudonymisation/custody.py::_reencrypt_asset": "re-seals a blob in place in the "
    "same store under a new key; nothing leaves the store's region (with buckets it grants "
    "itself the permit for the old blob's own region, named by its key)",
    "gateway/core/storage.py::put": "RegionalBlobStore routes a write to the bucket its key names "
    "and refuses it unless an allowed enforce_residency(STORAGE_WRITE) for that dataset and "
    "region granted a permit in the same context (the callers, registered above, check)",
    "gateway/core/storage.py::put_cleared": "the storage sink itself: it requires the Clearance of "
    "an allowed STORAGE_WRITE check for the key's dataset and region (tests/policy/"
    "test_clearance.py); its callers, registered above, make that check",
    "gateway/reports/schema.py::*": "writes the report JSON Schema (no personal data)",
    "gateway/labelstudio/demo.py::_credentials": "writes the local demo's Label Studio login "
    "(no personal data of any dataset)",
}
ENTRY_POINTS = {"gateway/ingest.py::ingest_upload"}  # where data enters the gateway
STORE_CALLS = {"put"}  # store writes, everywhere
STORE_READS_OUT = {"get"}  # store reads that hand data onwards
CLEARED_SINKS = {"put_cleared", "get_cleared"}  # every call moves data, wherever it is
SYNC_CALLS = {"import_tasks", "create_many", "import_tasks_async"}
FILE_WRITES = {"write_bytes", "write_text", "dump"}
EXPORT_MODULES = (
    "gateway/lineage/",
    "gateway/reports/",
    "gateway/cli/reports.py",
    "gateway/demo.py",
    "gateway/labelstudio/",
)
SKIP = ("gateway/migrations/", "gateway/policy/", "gateway/cli/policies.py")


@dataclass
class Module:
    path: str
    tree: ast.Module


def _modules() -> list[Module]:
    found = []
    for base in ("gateway", "ml_backend"):
        for file in sorted((ROOT / base).rglob("*.py")):
            rel = file.relative_to(ROOT).as_posix()
            if not rel.startswith(SKIP):
                found.append(Module(rel, ast.parse(file.read_text(), rel)))
    return found


def _functions(tree: ast.AST) -> list[ast.FunctionDef | ast.AsyncFunctionDef]:
    return [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)]


def _calls(fn: ast.AST) -> list[ast.Call]:
    return [n for n in ast.walk(fn) if isinstance(n, ast.Call)]


def _name(call: ast.Call) -> str | None:
    f = call.func
    return f.attr if isinstance(f, ast.Attribute) else f.id if isinstance(f, ast.Name) else None


def _receiver(call: ast.Call) -> str:
    f = call.func
    if isinstance(f, ast.Attribute):
        v = f.value
        return v.attr if isinstance(v, ast.Attribute) else v.id if isinstance(v, ast.Name) else ""
    return ""


def _moves(module: Module, call: ast.Call) -> bool:
    name, receiver = _name(call), _receiver(call)
    if name in CLEARED_SINKS:
        return True
    if receiver == "store" and name in STORE_CALLS:
        return True
    if receiver == "store" and name in STORE_READS_OUT:
        return module.path.startswith(
            (
                "ml_backend/",
                "gateway/ml_images.py",
                *EXPORT_MODULES,
                "gateway/pipeline.py",
                "gateway/pseudonymisation/",
            )
        )
    if name in SYNC_CALLS:
        return True
    return name in FILE_WRITES and module.path.startswith(EXPORT_MODULES)


def _innermost(module: Module, call: ast.Call) -> str:
    best = "*"
    for fn in _functions(module.tree):
        if fn.lineno <= call.lineno <= (fn.end_lineno or fn.lineno) and any(
            c is call for c in _calls(fn)
        ):
            best = fn.name  # ast.walk is breadth-first: later matches are nested deeper
    return best


def data_moving_sites(modules: list[Module]) -> set[str]:
    sites = {
        f"{m.path}::{_innermost(m, c)}" for m in modules for c in _calls(m.tree) if _moves(m, c)
    }
    return sites | ENTRY_POINTS


class CallGraph:
    """Simple-name call graph over the scanned code (conservative on shared names)."""

    def __init__(self, modules: list[Module]) -> None:
        self.calls: dict[str, set[str]] = defaultdict(set)
        self.callers: dict[str, set[str]] = defaultdict(set)
        self.enforces: dict[str, set[str]] = defaultdict(set)
        for m in modules:
            for fn in _functions(m.tree):
                for call in _calls(fn):
                    callee = _name(call)
                    if callee is None:
                        continue
                    self.calls[fn.name].add(callee)
                    self.callers[callee].add(fn.name)
                    if callee == "enforce_residency":
                        self.enforces[fn.name] |= _points(call)
            # module level code (e.g. CLI commands registered at import) counts as "*"
            for call in _calls(m.tree):
                if (callee := _name(call)) is not None:
                    self.calls[f"{m.path}::*"].add(callee)

    def reaches(
        self, fn: str, point: str, depth: int = 6, seen: frozenset[str] = frozenset()
    ) -> bool:
        if point in self.enforces.get(fn.split("::")[-1], set()):
            return True
        if depth == 0 or fn in seen:
            return False
        return any(self.reaches(c, point, depth - 1, seen | {fn}) for c in self.calls.get(fn, ()))

    def guarded(self, fn: str, point: str, depth: int = 4) -> bool:
        """Reaches the check itself, or every caller is guarded (and there is one)."""
        if self.reaches(fn, point):
            return True
        callers = self.callers.get(fn.split("::")[-1], set()) - {fn}
        return (
            depth > 0 and bool(callers) and all(self.guarded(c, point, depth - 1) for c in callers)
        )


def _points(call: ast.Call) -> set[str]:
    for kw in call.keywords:
        if kw.arg == "point" and isinstance(kw.value, ast.Attribute):
            return {kw.value.attr}
    return set()


MODULES = _modules()
GRAPH = CallGraph(MODULES)


def test_every_data_moving_site_is_registered_or_exempt() -> None:
    sites = data_moving_sites(MODULES)
    unregistered = sites - REGISTRY.keys() - EXEMPT.keys()
    assert not unregistered, f"data moves here without a registered residency check: {unregistered}"
    stale = (REGISTRY.keys() | EXEMPT.keys()) - sites
    assert not stale, f"registered sites that no longer move data (update REGISTRY): {stale}"


@pytest.mark.parametrize(("site", "point"), sorted(REGISTRY.items()))
def test_registered_site_passes_its_check(site: str, point: EnforcementPoint) -> None:
    fn = site if site.endswith("::*") else site.split("::")[-1]
    assert GRAPH.guarded(fn, point.name), f"{site} moves data without enforce_residency({point})"


@pytest.mark.parametrize("point", list(EnforcementPoint))
def test_each_point_is_enforced_somewhere(point: EnforcementPoint) -> None:
    assert any(point.name in pts for pts in GRAPH.enforces.values()), point


def test_the_scan_catches_an_unchecked_store_write() -> None:
    """The scanner itself: a function writing to the store with no check is found, unguarded."""
    code = (
        "def leak(ctx, asset):\n    ctx.store.put('x', b'y')\n\n"
        "def safe(ctx, s):\n    enforce_residency(ctx, s, point=EnforcementPoint.STORAGE_WRITE)\n"
        "    ctx.store.put('x', b'y')\n"
    )
    module = Module("gateway/example.py", ast.parse(code))
    graph = CallGraph([module])
    assert data_moving_sites([module]) - ENTRY_POINTS == {
        "gateway/example.py::leak",
        "gateway/example.py::safe",
    }
    assert graph.guarded("safe", "STORAGE_WRITE")
    assert not graph.guarded("leak", "STORAGE_WRITE")
