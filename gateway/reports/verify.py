"""Verify a signed report: against the gateway's own key table (live), or offline against a
public key or fingerprint the verifier trusts (an auditor's copy of the published key)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from gateway.errors import IntegrityFailure
from gateway.lineage.signing import fingerprint, key_id_for, unb64
from gateway.reports.build import verify_report
from gateway.reports.model import SignedReport


def load_document(path: Path) -> dict[str, Any]:
    """The report file as JSON. A signed report holds no floats (integers and strings only),
    so a number with a fraction or exponent, NaN or Infinity is tampering: refused here."""

    def no_float(text: str) -> Any:
        raise IntegrityFailure(
            f"{path} holds the number {text[:40]}: a signed report has no floats (tampered?)",
            path=str(path),
        )

    try:
        document = json.loads(
            path.read_text(encoding="utf-8"), parse_float=no_float, parse_constant=no_float
        )
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:  # ValueError: 5000 digits
        raise IntegrityFailure(f"{path} is not a JSON report", path=str(path)) from exc
    if not isinstance(document, dict):
        raise IntegrityFailure(f"{path} is not a signed report", path=str(path))
    return document


def anchored_keys(
    document: Mapping[str, Any], *, public_keys: Sequence[bytes], fingerprints: Sequence[str]
) -> dict[str, bytes]:
    """Keys the verifier trusts: given public keys, and keys embedded in the report whose
    SHA-256 fingerprint (recomputed here) the verifier pinned."""
    trusted = {key_id_for(raw): raw for raw in public_keys}
    pinned = {fp.lower().removeprefix("sha256:").replace(":", "") for fp in fingerprints}
    report = document.get("report") if isinstance(document, Mapping) else None
    lineage = report.get("lineage") if isinstance(report, Mapping) else None
    entries = lineage.get("signing_keys") if isinstance(lineage, Mapping) else None
    for entry in entries if isinstance(entries, list) else []:
        if not isinstance(entry, Mapping):
            continue  # not a key: a tampered entry anchors nothing
        raw = unb64(str(entry.get("public_key", "")))
        if fingerprint(raw) in pinned:
            trusted[key_id_for(raw)] = raw
    if not trusted:
        raise IntegrityFailure(
            "none of the trusted keys or fingerprints matches a key in this report: pass the "
            "published key (--trusted-key) or its fingerprint (--fingerprint)"
        )
    return trusted


def verify_report_file(path: Path, *, keys: Mapping[str, bytes]) -> SignedReport:
    """Raise IntegrityFailure unless the file is a report signed by one of `keys`."""
    return verify_report(load_document(path), keys)
