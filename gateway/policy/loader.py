"""Read a policy from YAML and say exactly what is wrong: file, line, column, field, expected.

One parse: PyYAML composes the node tree (which keeps line marks), the document is built from
it, validated by the pydantic schema and checked against the region catalogue; each problem
is mapped back to the node it came from. Duplicate keys are refused (PyYAML would silently
keep the last one, and a duplicate is how a typo weakens a policy unnoticed).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from gateway.policy.catalogue import RegionCatalogue, UnknownName, load_catalogue
from gateway.policy.errors import PolicyInvalid
from gateway.policy.schema import EnforcedMove, PolicyDocument

MAX_POLICY_BYTES = 256 * 1024
Loc = tuple[str | int, ...]


@dataclass(frozen=True, slots=True)
class PolicyProblem:
    file: str
    line: int | None
    column: int | None
    field: str
    problem: str
    expected: str

    def describe(self) -> str:
        where = f"{self.file}:{self.line}:{self.column}" if self.line else self.file
        return f"{where}: {self.field or '(document)'}: {self.problem} (expected {self.expected})"


def load_policy_file(path: Path, *, catalogue: RegionCatalogue | None = None) -> PolicyDocument:
    try:
        if path.stat().st_size > MAX_POLICY_BYTES:
            raise PolicyInvalid(f"{path} is larger than {MAX_POLICY_BYTES} bytes", file=str(path))
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise PolicyInvalid(f"cannot read {path}: {exc}", file=str(path)) from exc
    return load_policy_text(text, source=str(path), catalogue=catalogue)


def load_policy_text(
    text: str, *, source: str, catalogue: RegionCatalogue | None = None
) -> PolicyDocument:
    root, data = _compose(text, source)
    try:
        doc = PolicyDocument.model_validate(data)
    except ValidationError as exc:
        problems = [_from_pydantic(err, root, source) for err in exc.errors()]
        raise _invalid(source, problems) from exc
    problems = [
        _problem(root, source, loc, message, expected)
        for loc, message, expected in catalogue_problems(doc, catalogue or load_catalogue())
    ]
    if problems:
        raise _invalid(source, problems)
    return doc


def catalogue_problems(
    doc: PolicyDocument, catalogue: RegionCatalogue
) -> list[tuple[Loc, str, str]]:
    """Names the schema accepts but the region catalogue does not know."""
    res = doc.residency
    found: list[tuple[Loc, str, str]] = []
    origin = catalogue.jurisdictions.get(res.origin)
    if origin is None or not origin.is_origin:
        origins = sorted(j for j, v in catalogue.jurisdictions.items() if v.is_origin)
        found.append(
            (
                ("residency", "origin"),
                f"{res.origin!r} is not an origin jurisdiction",
                f"one of {', '.join(origins)}",
            )
        )
    for move in EnforcedMove:
        field = res.field_for(move)
        for i, name in enumerate(res.regions_for(move)):
            try:
                catalogue.check_name(name)
            except UnknownName as exc:
                found.append(
                    (
                        ("residency", field, i),
                        str(exc),
                        "a group (eu, eea, adequate), a country "
                        "code (e.g. DE) or a region id (e.g. eu-de)",
                    )
                )
    for i, basis in enumerate(res.transfer_bases):
        if basis not in catalogue.transfer_bases:
            found.append(
                (
                    ("residency", "transfer_bases", i),
                    f"unknown transfer basis {basis!r}",
                    f"one of {', '.join(sorted(catalogue.transfer_bases))}",
                )
            )
    return list(dict.fromkeys(found))  # export = storage lists are checked once


def _invalid(source: str, problems: list[PolicyProblem]) -> PolicyInvalid:
    summary = "; ".join(p.describe() for p in problems[:5])
    more = f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""
    return PolicyInvalid(
        f"{source} is not a valid policy: {summary}{more}",
        file=source,
        errors=[asdict(p) for p in problems],
    )


class _NoDuplicatesLoader(yaml.SafeLoader):
    pass


def _compose(text: str, source: str) -> tuple[yaml.Node | None, Any]:
    try:  # the reader refuses non-printable characters as soon as it is built
        loader = _NoDuplicatesLoader(text)
    except yaml.YAMLError as exc:
        raise PolicyInvalid(f"{source} is not valid YAML: {exc}", file=source) from exc
    try:
        root = loader.get_single_node()
        if root is not None:
            _refuse_duplicates(root, source)
        data = loader.construct_document(root) if root is not None else None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = PolicyProblem(
            file=source,
            line=mark.line + 1 if mark else None,
            column=mark.column + 1 if mark else None,
            field="",
            problem=f"not valid YAML: {exc.problem or exc.context}",
            expected="a YAML mapping of policy sections",
        )
        raise _invalid(source, [problem]) from exc
    except yaml.YAMLError as exc:
        raise PolicyInvalid(f"{source} is not valid YAML: {exc}", file=source) from exc
    except RecursionError as exc:  # PyYAML composes and constructs recursively
        raise PolicyInvalid(f"{source} is nested too deeply to be a policy", file=source) from exc
    finally:
        loader.dispose()
    if not isinstance(data, dict):
        problem = _problem(
            root,
            source,
            (),
            "the document is not a mapping",
            "keys schema_version, name, residency, retention, redaction, pseudonymisation",
        )
        raise _invalid(source, [problem])
    return root, data


def _refuse_duplicates(node: yaml.Node, source: str) -> None:
    if isinstance(node, yaml.MappingNode):
        seen: set[Any] = set()
        for key, value in node.value:
            if isinstance(key, yaml.ScalarNode):
                if key.value in seen:
                    raise PolicyInvalid(
                        f"{source}:{key.start_mark.line + 1}: duplicate key {key.value!r}",
                        file=source,
                        errors=[
                            asdict(
                                PolicyProblem(
                                    source,
                                    key.start_mark.line + 1,
                                    key.start_mark.column + 1,
                                    str(key.value),
                                    f"duplicate key {key.value!r}",
                                    "each key once",
                                )
                            )
                        ],
                    )
                seen.add(key.value)
            _refuse_duplicates(value, source)
    elif isinstance(node, yaml.SequenceNode):
        for item in node.value:
            _refuse_duplicates(item, source)


def _from_pydantic(err: Any, root: yaml.Node | None, source: str) -> PolicyProblem:
    loc: Loc = tuple(err["loc"])
    return _problem(root, source, loc, err["msg"], _expected(err, loc))


def _expected(err: Any, loc: Loc) -> str:
    kind = err["type"]
    if kind == "missing":
        return "this required field"
    if kind == "extra_forbidden":
        known = _known_fields(loc[:-1])
        return f"one of the fields {', '.join(known)}" if known else "no extra fields"
    ctx = err.get("ctx") or {}
    if "expected" in ctx:
        return str(ctx["expected"])
    for key, words in (("ge", ">="), ("gt", ">"), ("le", "<="), ("lt", "<")):
        if key in ctx:
            return f"a value {words} {ctx[key]}"
    if "min_length" in ctx:
        return f"at least {ctx['min_length']} item(s)"
    return str(err["msg"]).lower().replace("input should be ", "").replace("value error, ", "")


def _known_fields(loc: Loc) -> list[str]:
    model: Any = PolicyDocument
    for part in loc:
        if not (isinstance(model, type) and issubclass(model, BaseModel)):
            return []
        info = model.model_fields.get(str(part))
        if info is None:
            return []
        model = info.annotation
    if isinstance(model, type) and issubclass(model, BaseModel):
        return list(model.model_fields)
    return []


def _problem(
    root: yaml.Node | None, source: str, loc: Loc, message: str, expected: str
) -> PolicyProblem:
    node = _node_at(root, loc)
    mark = node.start_mark if node is not None else None
    return PolicyProblem(
        file=source,
        line=mark.line + 1 if mark else None,
        column=mark.column + 1 if mark else None,
        field=".".join(str(p) for p in loc),
        problem=message,
        expected=expected,
    )


def _node_at(root: yaml.Node | None, loc: Loc) -> yaml.Node | None:
    """The deepest node along `loc`: the value if present, else its key, else the parent."""
    node = root
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            match = next(((k, v) for k, v in node.value if k.value == str(part)), None)
            if match is None:
                return node
            key, value = match
            # a scalar value sits on its key's line; a block value starts below it
            node = key if part == loc[-1] and not isinstance(value, yaml.ScalarNode) else value
        elif (
            isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value)
        ):
            node = node.value[part]
        else:
            return node
    return node
