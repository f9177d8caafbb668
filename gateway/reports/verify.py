"""Verify a signed report: against the gateway's own key table (live), or offline against a
public key or fingerprint the verifier trusts (an auditor's copy of the published key)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from gateway.core.errors import IntegrityFailure
from gateway.lineage.signing import fingerprint, key_id_for, unb64
from gateway.reports.build import verify_report
from gateway.reports.embedded import from_html, from_pdf, kind_of, signed_json, visible_text
from gateway.reports.model import SignedReport


def load_document(path: Path) -> dict[str, Any]:
    """The signed report in a JSON file, or the one an HTML page or a PDF embeds."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise IntegrityFailure(f"cannot read {path}: {exc.strerror}", path=str(path)) from None
    kind = kind_of(data)
    if kind == "pdf":
        return from_pdf(data)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise IntegrityFailure(f"{path} is not UTF-8 text", path=str(path)) from exc
    if kind == "html":
        return from_html(text)
    document = signed_json(text, str(path), path=str(path))
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
    """Raise IntegrityFailure unless the file is (or embeds) a report signed by one of `keys`;
    an HTML page's visible text must also be what the signed report renders to."""
    signed = verify_report(load_document(path), keys)
    if kind_of(path.read_bytes()) == "html":
        # deferred: the templates (jinja2) only when an HTML report is checked
        from gateway.reports.render import to_html

        if visible_text(path.read_text(encoding="utf-8")) != visible_text(to_html(signed)):
            raise IntegrityFailure(
                "the embedded report's signature is valid, but the page's text is not what it "
                "renders to (edited after signing, or rendered by another gateway version): "
                "rely on the embedded JSON",
                path=str(path),
            )
    return signed
