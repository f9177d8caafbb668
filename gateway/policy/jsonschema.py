"""The JSON Schema of policy documents, for editors (committed in gateway/policies/schema/)."""

from __future__ import annotations

import json
from typing import Any

from gateway.policy.schema import PolicyDocument
from gateway.shipped import shipped_path

SCHEMA_FILE = shipped_path("policies", "schema", "policy.schema.json")
SCHEMA_ID = "https://privacy-gateway.dev/schemas/policy/v1.json"


def policy_json_schema() -> dict[str, Any]:
    schema = PolicyDocument.model_json_schema(mode="validation")
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "$id": SCHEMA_ID, **schema}


def render_schema() -> str:
    return json.dumps(policy_json_schema(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"
