"""Read a redaction policy from a YAML or JSON file (for the standalone `redact` command).

The file holds a `RedactionPolicy` at its top level (`faces`, `plates`, `text`, `operator`,
`leak_check`, `limits`, `timeout_seconds`), or a full policy document whose `redaction` key
holds one. Unknown keys are refused, so a typo never silently weakens protection.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from redaction.errors import RedactionError
from redaction.policy import RedactionPolicy

_MAX_POLICY_BYTES = 1024 * 1024


class PolicyFileError(RedactionError):
    code = "invalid-policy-file"


def _parse(text: str, path: Path) -> Any:
    try:
        if text.lstrip().startswith("{"):
            return json.loads(text)
        return yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        raise PolicyFileError(f"{path} is not valid YAML or JSON: {exc}", path=str(path)) from exc


def load_policy_file(path: Path) -> RedactionPolicy:
    """Parse and validate a policy file; raise `PolicyFileError` with what to fix."""
    try:
        if path.stat().st_size > _MAX_POLICY_BYTES:
            raise PolicyFileError(f"{path} is too large for a policy file", path=str(path))
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise PolicyFileError(f"cannot read policy file {path}: {exc}", path=str(path)) from exc
    data = _parse(text, path)
    if data is None:
        data = {}
    if isinstance(data, dict) and isinstance(data.get("redaction"), dict):
        data = data["redaction"]
    if not isinstance(data, dict):
        raise PolicyFileError(f"{path} must hold a mapping of policy keys", path=str(path))
    try:
        return RedactionPolicy.model_validate(data)
    except ValidationError as exc:
        problems = [
            {"field": ".".join(str(p) for p in err["loc"]), "problem": err["msg"]}
            for err in exc.errors()
        ]
        summary = "; ".join(f"{p['field']}: {p['problem']}" for p in problems)
        raise PolicyFileError(
            f"{path} is not a valid redaction policy: {summary}", path=str(path), errors=problems
        ) from exc
