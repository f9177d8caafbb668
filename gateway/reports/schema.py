"""The report's JSON Schema, exported to gateway/reports/schema.json (a test keeps it current).

Regenerate with `python -m gateway.reports.schema`.
"""

from __future__ import annotations

import json
from typing import Any

from gateway.reports.model import SignedReport
from gateway.shipped import shipped_path

SCHEMA_FILE = shipped_path("reports", "schema.json")


def report_schema() -> dict[str, Any]:
    schema = SignedReport.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = "https://privacy-gateway.dev/schemas/report-v1.json"
    return schema


def schema_text() -> str:
    return json.dumps(report_schema(), indent=2, sort_keys=True) + "\n"


if __name__ == "__main__":
    SCHEMA_FILE.write_text(schema_text(), encoding="utf-8")
    print(f"wrote {SCHEMA_FILE}")  # noqa: T201
