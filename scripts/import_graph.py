#!/usr/bin/env python3
"""Count function-level imports and import cycles in the gateway's own packages.

    .venv/bin/python scripts/import_graph.py            # counts, cycles, deferred imports
    .venv/bin/python scripts/import_graph.py --summary  # the two counts only

A function-level import is an `import` inside a function body (at any depth below a `def`);
imports under `if TYPE_CHECKING:` at module level do not count. The graph is built from the
syntax tree alone (nothing is imported): an edge A -> B for every module-level or function-level
import in A of a module B in the packages, `from pkg import name` resolving to `pkg.name` when
that is a module, else to `pkg`. Imports under `if TYPE_CHECKING:` are not edges (they never run).
Importing `p.q.r` first runs the packages `p` and `p.q` (their `__init__`), so an import from
outside a package is also an edge to that package: a package `__init__` that re-exports from
its submodules hides a cycle otherwise (`policy.schema` -> `pseudonymisation` (`__init__`) ->
`task_meta` -> ... -> `policy.schema`). A module's own ancestor packages are no edge (Python
runs them before it). A cycle is a strongly connected component of more than one module.
"""

from __future__ import annotations

import argparse
import ast
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("gateway", "redaction", "ml_backend")
EXCLUDED_PARTS = frozenset({"migrations"})


@dataclass(frozen=True)
class LocalImport:
    """An import statement inside a function body."""

    module: str
    line: int
    text: str
    commented: bool  # a `#` comment on it or above it (the reason it is deferred)


def module_files(root: Path = ROOT, packages: Iterable[str] = PACKAGES) -> dict[str, Path]:
    """Dotted module name -> source file, for every module in the packages."""
    found: dict[str, Path] = {}
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            rel = path.relative_to(root)
            if EXCLUDED_PARTS.intersection(rel.parts):
                continue
            parts = list(rel.with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _walk_imports(
    node: ast.AST, *, in_function: bool
) -> Iterator[tuple[ast.Import | ast.ImportFrom, bool]]:
    """Every import reachable from node that runs, with whether it sits inside a function."""
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.Import | ast.ImportFrom):
            yield child, in_function
        elif isinstance(child, ast.If) and _is_type_checking(child.test):
            for other in child.orelse:
                yield from _walk_imports(other, in_function=in_function)
        elif isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
            yield from _walk_imports(child, in_function=True)
        else:
            yield from _walk_imports(child, in_function=in_function)


def _absolute(module: str, is_package: bool, node: ast.ImportFrom) -> str:
    if node.level == 0:
        return node.module or ""
    base = module.split(".")
    if not is_package:
        base = base[:-1]
    if node.level > 1:
        base = base[: len(base) - (node.level - 1)]
    return ".".join([*base, node.module] if node.module else base)


def _targets(
    module: str, is_package: bool, node: ast.Import | ast.ImportFrom, known: set[str]
) -> list[str]:
    """The modules of the packages that one import statement loads (its edges)."""
    names: list[str] = []
    if isinstance(node, ast.Import):
        names = [alias.name for alias in node.names]
    else:
        source = _absolute(module, is_package, node)
        for alias in node.names:
            candidate = f"{source}.{alias.name}"
            names.append(candidate if candidate in known else source)
    targets = []
    for name in names:
        # `import a.b.c` of a non-module attribute path: the longest known prefix
        while name and name not in known:
            name = name.rpartition(".")[0]
        if name and name != module:
            targets.append(name)
        # the packages Python runs on the way, unless the importer is inside them
        parent = name.rpartition(".")[0]
        while parent:
            if parent in known and not module.startswith(parent + "."):
                targets.append(parent)
            parent = parent.rpartition(".")[0]
    return targets


DEFERRED_MARKER = "# deferred imports:"
"""A module-level comment starting so gives the reason for every import inside its functions
(the command line: each command loads only what it runs)."""


def _has_comment(lines: list[str], node: ast.stmt, import_lines: set[int]) -> bool:
    """A comment on the statement, or above it or above the run of imports it belongs to."""
    end = node.end_lineno or node.lineno
    if any("#" in lines[i - 1] for i in range(node.lineno, end + 1)):
        return True
    line = node.lineno - 1
    while line >= 1 and (
        line in import_lines or (not lines[line - 1].strip() and line - 1 in import_lines)
    ):  # up through the run (isort's blank line between its groups included)
        line -= 1
    return line >= 1 and lines[line - 1].strip().startswith("#")


def analyse(
    root: Path = ROOT, packages: Iterable[str] = PACKAGES
) -> tuple[dict[str, set[str]], list[LocalImport]]:
    """The import graph of the packages and every function-level import in them."""
    files = module_files(root, packages)
    known = set(files)
    graph: dict[str, set[str]] = {name: set() for name in files}
    local: list[LocalImport] = []
    for name, path in files.items():
        source = path.read_text(encoding="utf-8")
        lines = source.splitlines()
        is_package = path.name == "__init__.py"
        found = list(_walk_imports(ast.parse(source), in_function=False))
        import_lines = {
            i for node, _ in found for i in range(node.lineno, (node.end_lineno or node.lineno) + 1)
        }
        module_reason = any(line.startswith(DEFERRED_MARKER) for line in lines)
        for node, in_function in found:
            graph[name].update(_targets(name, is_package, node, known))
            if in_function:
                text = lines[node.lineno - 1].strip()
                commented = module_reason or _has_comment(lines, node, import_lines)
                local.append(LocalImport(name, node.lineno, text, commented))
    return graph, local


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    found: list[list[str]] = []
    counter = 0
    for start in sorted(graph):
        if start in index:
            continue
        work: list[tuple[str, Iterator[str]]] = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, successors = work[-1]
            advanced = False
            for succ in successors:
                if succ not in index:
                    index[succ] = low[succ] = counter
                    counter += 1
                    stack.append(succ)
                    on_stack.add(succ)
                    work.append((succ, iter(sorted(graph[succ]))))
                    advanced = True
                    break
                if succ in on_stack:
                    low[node] = min(low[node], index[succ])
            if advanced:
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return sorted(found)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--summary", action="store_true", help="print the two counts only")
    args = parser.parse_args(argv)
    graph, local = analyse()
    components = cycles(graph)
    out = sys.stdout
    out.write(f"function-level imports: {len(local)}\n")
    out.write(f"  without a comment: {sum(not item.commented for item in local)}\n")
    out.write(f"import cycles (strongly connected components > 1): {len(components)}\n")
    out.write(f"  modules in cycles: {sum(len(c) for c in components)}\n")
    if args.summary:
        return 0
    for component in components:
        out.write(f"\ncycle of {len(component)}: {', '.join(component)}\n")
    out.write("\n")
    for item in local:
        mark = " " if item.commented else "!"
        out.write(f"{mark} {item.module}:{item.line}: {item.text}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
