"""What kind of file a shipped or admin-written policy file is, so `policies validate` checks
each against the right model: a policy document (`schema_version`, residency, retention, ...),
a redaction policy for the standalone `redact` command (`faces`, `plates`, ...), or the
committed JSON Schema of policy documents."""

from __future__ import annotations

import json
from enum import StrEnum
from typing import Any

import yaml

from redaction.policy import RedactionPolicy


class PolicyFileKind(StrEnum):
    DOCUMENT = "policy document"
    REDACTION = "redaction policy"
    JSON_SCHEMA = "JSON Schema of policy documents"


def classify(text: str, *, schema_id: str) -> PolicyFileKind:
    """The kind a file's text declares. Anything unclear is a policy document, whose
    validation names each line that is wrong."""
    data = _parse(text)
    if not isinstance(data, dict):
        return PolicyFileKind.DOCUMENT
    if data.get("$id") == schema_id or "$schema" in data:
        return PolicyFileKind.JSON_SCHEMA
    if "schema_version" in data:
        return PolicyFileKind.DOCUMENT
    if set(data) & set(RedactionPolicy.model_fields):
        return PolicyFileKind.REDACTION
    return PolicyFileKind.DOCUMENT


def _parse(text: str) -> Any:
    try:
        if text.lstrip().startswith("{"):
            return json.loads(text)
        return yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError):
        return None  # the document loader reports where the syntax breaks
