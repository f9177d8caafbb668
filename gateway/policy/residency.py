"""The residency decision, pure: may data governed by this policy move to that region?

Two questions, in order. (1) Does the policy allow the region for this kind of move (its
processing/storage/annotation/export list, plus adequacy countries when `adequacy_counts`)?
(2) If the region is outside the origin's free-flow area (the EEA for EU data), is there a
lawful transfer under GDPR Chapter V: an adequacy decision in force whose scope covers the
recipient, or a safeguard / derogation the policy accepts and the destination declared?
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any

from gateway.policy.catalogue import BasisKind, RegionCatalogue, UnknownName
from gateway.policy.schema import EnforcedMove, ResidencyPolicy


@dataclass(frozen=True, slots=True)
class TransferDecision:
    allowed: bool
    rule: str
    message: str
    details: dict[str, Any] = field(default_factory=dict)


def decide_transfer(
    policy: ResidencyPolicy,
    catalogue: RegionCatalogue,
    *,
    move: EnforcedMove,
    target_region: str,
    transfer_basis: str | None,
    on: date,
) -> TransferDecision:
    facts: dict[str, Any] = {
        "origin": policy.origin,
        "target_region": target_region,
        "transfer_basis": transfer_basis,
    }
    try:
        region = catalogue.region(target_region)
        allowed = _allowed_regions(policy, catalogue, move=move, on=on)
    except UnknownName as exc:
        return TransferDecision(False, "catalogue.unknown-name", str(exc), facts)
    facts |= {"target_country": region.country, "allowed_regions": sorted(allowed)}
    listed = policy.field_for(move)
    if target_region not in allowed:
        return TransferDecision(
            False,
            f"residency.{listed}",
            f"region {target_region} is not in the policy's {listed} "
            f"({', '.join(policy.regions_for(move)) or 'none'})",
            facts,
        )
    return _chapter_v(
        policy, catalogue, country=region.country, basis=transfer_basis, on=on, facts=facts
    )


def _allowed_regions(
    policy: ResidencyPolicy, catalogue: RegionCatalogue, *, move: EnforcedMove, on: date
) -> set[str]:
    names = list(policy.regions_for(move))
    if policy.adequacy_counts and names:
        names.append("adequate")
    return catalogue.expand(names, origin=policy.origin, on=on)


def _chapter_v(
    policy: ResidencyPolicy,
    catalogue: RegionCatalogue,
    *,
    country: str,
    basis: str | None,
    on: date,
    facts: dict[str, Any],
) -> TransferDecision:
    if country in catalogue.free_flow_countries(policy.origin):
        return TransferDecision(True, "chapter-v.free-flow", "inside the origin's area", facts)
    decision = catalogue.adequacy_for(policy.origin, country, on=on)
    if decision is not None and policy.adequacy_counts:
        facts |= {"adequacy_decision": decision.decision, "adequacy_date": str(decision.date)}
        if decision.requires_basis is None:
            return TransferDecision(True, "chapter-v.adequacy", decision.decision, facts)
        if basis == decision.requires_basis:
            return TransferDecision(True, "chapter-v.adequacy-scope", decision.decision, facts)
    if basis is not None and basis in policy.transfer_bases:
        known = catalogue.transfer_bases.get(basis)
        if known is not None and (known.countries is None or country in known.countries):
            rule = {
                BasisKind.SAFEGUARD: "chapter-v.art46",
                BasisKind.DEROGATION: "chapter-v.art49",
                BasisKind.ADEQUACY_SCOPE: "chapter-v.adequacy-scope",
            }[known.kind]
            return TransferDecision(True, rule, f"{known.article}: {known.title}", facts)
    facts["accepted_bases"] = sorted(policy.transfer_bases)
    if decision is not None and decision.requires_basis and policy.adequacy_counts:
        message = (
            f"{country} is adequate only for recipients declaring {decision.requires_basis!r} "
            f"({decision.scope}); the destination declared {basis!r}"
        )
        return TransferDecision(False, "chapter-v.adequacy-scope", message, facts)
    message = (
        f"{country} is a third country for {policy.origin}: the destination must declare a "
        f"transfer basis the policy accepts ({', '.join(policy.transfer_bases) or 'none'}); "
        f"it declared {basis!r}"
    )
    return TransferDecision(False, "chapter-v.no-transfer-basis", message, facts)
