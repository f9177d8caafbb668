"""Moved to `gateway.lineage.format.canonical`; these names stay importable from here for the
modules outside `gateway.lineage` that use them (reports, Label Studio result digests)."""

from gateway.lineage.format.canonical import MAX_SAFE_INTEGER, canonical_json

__all__ = ["MAX_SAFE_INTEGER", "canonical_json"]
