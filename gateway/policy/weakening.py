"""Weakening is never silent: a policy that switches off face or plate redaction or the leak
check is activated (or bound to a dataset) only when the caller names each protection it turns
off; the acknowledgement is recorded in lineage and every governance report flags the policy."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from gateway.policy.errors import WeakeningNotAcknowledged
from gateway.policy.schema import PolicyDocument

PROTECTIONS = ("faces", "plates", "leak_check")


def weakened_protections(doc: PolicyDocument) -> list[str]:
    """The protections this policy switches off, in a fixed order."""
    return [name for name in PROTECTIONS if not getattr(doc.redaction, name).enabled]


def weakened_in_document(document: Mapping[str, Any]) -> list[str]:
    """The same, read from a stored (canonical) document: a missing switch is on."""
    section = document.get("redaction") or {}
    found = []
    for name in PROTECTIONS:
        switch = section.get(name) if isinstance(section, Mapping) else None
        if isinstance(switch, Mapping) and switch.get("enabled") is False:
            found.append(name)
    return found


def require_acknowledged(weakened: list[str], acknowledged: Iterable[str]) -> None:
    missing = [name for name in weakened if name not in set(acknowledged)]
    if missing:
        raise WeakeningNotAcknowledged(
            f"this policy switches off {', '.join(missing)}: acknowledge each protection it "
            "turns off (API: acknowledge_weakening; CLI: --acknowledge-weakening NAME)",
            turned_off=weakened,
            not_acknowledged=missing,
        )
