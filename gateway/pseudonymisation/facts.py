"""The original's technical facts as JSON for the sealed private metadata of an asset."""

from __future__ import annotations

from typing import Any

from redaction.metadata import read_facts


def facts_json(data: bytes) -> dict[str, Any]:
    """EXIF facts worth keeping (sealed at rest; released only as the policy allows).
    GPS is never kept: only the fact that the original carried it."""
    facts = read_facts(data)
    return {
        "capture_time": facts.capture_time.isoformat() if facts.capture_time else None,
        "camera_make": facts.camera_make,
        "camera_model": facts.camera_model,
        "device_serial": facts.device_serial,
        "orientation": facts.orientation,
        "had_gps": facts.had_gps,
        "had_icc_profile": facts.icc_profile is not None,
    }
