"""The residency decision on its own: policy x catalogue x region x declared basis."""

from __future__ import annotations

from datetime import date

import pytest

from gateway.policy.catalogue import load_catalogue
from gateway.policy.residency import decide_transfer
from gateway.policy.schema import EnforcedMove, ResidencyPolicy

TODAY = date(2026, 11, 25)
CAT = load_catalogue()


def _policy(**kw: object) -> ResidencyPolicy:
    base: dict[str, object] = {
        "origin": "eu-gdpr",
        "processing_regions": ["eea"],
        "storage_regions": ["eu"],
        "annotation_regions": ["eea"],
    }
    return ResidencyPolicy.model_validate(base | kw)


def _decide(policy: ResidencyPolicy, region: str, move: EnforcedMove, basis: str | None = None):
    return decide_transfer(
        policy, CAT, move=move, target_region=region, transfer_basis=basis, on=TODAY
    )


@pytest.mark.parametrize(
    ("region", "move", "allowed", "rule"),
    [
        ("eu-de", EnforcedMove.PROCESSING, True, "chapter-v.free-flow"),
        ("eea-no", EnforcedMove.PROCESSING, True, "chapter-v.free-flow"),
        ("eea-no", EnforcedMove.STORAGE, False, "residency.storage_regions"),  # eu, not eea
        ("us-east", EnforcedMove.ANNOTATION, False, "residency.annotation_regions"),
        ("ch-zh", EnforcedMove.EXPORT, False, "residency.storage_regions"),  # export = storage
        ("mars-1", EnforcedMove.STORAGE, False, "catalogue.unknown-name"),
    ],
)
def test_eea_policy(region: str, move: EnforcedMove, allowed: bool, rule: str) -> None:
    decision = _decide(_policy(), region, move)
    assert (decision.allowed, decision.rule) == (allowed, rule)
    assert decision.details["target_region"] == region


def test_adequacy_counts_allows_switzerland_but_us_only_within_dpf_scope() -> None:
    policy = _policy(adequacy_counts=True)
    assert _decide(policy, "ch-zh", EnforcedMove.ANNOTATION).rule == "chapter-v.adequacy"
    denied = _decide(policy, "us-east", EnforcedMove.ANNOTATION)
    assert not denied.allowed and denied.rule == "chapter-v.adequacy-scope"
    assert "dpf" in denied.message
    ok = _decide(policy, "us-east", EnforcedMove.ANNOTATION, "dpf")
    assert ok.allowed and ok.rule == "chapter-v.adequacy-scope"
    assert "2023/1795" in ok.details["adequacy_decision"]
    # India has no adequacy decision: not allowed even with adequacy counting
    assert _decide(policy, "in-mumbai", EnforcedMove.ANNOTATION).rule == (
        "residency.annotation_regions"
    )


def test_adequacy_before_its_decision_date_does_not_count() -> None:
    policy = _policy(adequacy_counts=True)
    before_dpf = decide_transfer(
        policy,
        CAT,
        move=EnforcedMove.ANNOTATION,
        target_region="us-east",
        transfer_basis="dpf",
        on=date(2023, 7, 9),
    )
    assert not before_dpf.allowed


def test_listed_third_country_needs_a_declared_basis_the_policy_accepts() -> None:
    policy = _policy(annotation_regions=["eea", "US", "in-mumbai"], transfer_bases=["scc"])
    none = _decide(policy, "us-east", EnforcedMove.ANNOTATION)
    assert not none.allowed and none.rule == "chapter-v.no-transfer-basis"
    assert none.details["accepted_bases"] == ["scc"]
    assert _decide(policy, "us-east", EnforcedMove.ANNOTATION, "scc").rule == "chapter-v.art46"
    assert _decide(policy, "in-mumbai", EnforcedMove.ANNOTATION, "scc").allowed
    # a basis the policy does not accept does not help
    assert not _decide(policy, "in-mumbai", EnforcedMove.ANNOTATION, "bcr").allowed
    # dpf is only a basis for the US, and only if the policy accepts it
    dpf_policy = _policy(annotation_regions=["US", "in-mumbai"], transfer_bases=["dpf"])
    assert _decide(dpf_policy, "us-west", EnforcedMove.ANNOTATION, "dpf").allowed
    assert not _decide(dpf_policy, "in-mumbai", EnforcedMove.ANNOTATION, "dpf").allowed


def test_derogation_rule_named() -> None:
    policy = _policy(annotation_regions=["sg"], transfer_bases=["art49-explicit-consent"])
    decision = _decide(policy, "sg", EnforcedMove.ANNOTATION, "art49-explicit-consent")
    assert decision.allowed and decision.rule == "chapter-v.art49"


def test_catalogue_groups_and_jurisdictions() -> None:
    eu = CAT.expand(["eu"], origin="eu-gdpr", on=TODAY)
    eea = CAT.expand(["eea"], origin="eu-gdpr", on=TODAY)
    assert "eea-no" in eea - eu and "eu-de" in eu
    assert CAT.countries["NO"].eea and not CAT.countries["NO"].eu
    assert CAT.adequacy_for("eu-gdpr", "US", on=TODAY).requires_basis == "dpf"
    assert CAT.adequacy_for("eu-gdpr", "IN", on=TODAY) is None
    assert "eu-de" in CAT.expand(["adequate"], origin="uk-gdpr", on=TODAY)  # EEA adequate for UK


def test_data_kept_under_its_own_law_is_not_a_transfer() -> None:
    """A US-origin dataset processed in a US region: domestic, no Chapter V basis needed; the
    same dataset may still not go to the EU unless its policy lists it."""
    policy = _policy(
        origin="us", processing_regions=["US"], storage_regions=["US"], annotation_regions=["US"]
    )
    home = _decide(policy, "us-east", EnforcedMove.PROCESSING)
    assert (home.allowed, home.rule) == (True, "chapter-v.free-flow")
    away = _decide(policy, "eu-de", EnforcedMove.PROCESSING)
    assert (away.allowed, away.rule) == (False, "residency.processing_regions")
    # EU data in the US still needs the recipient's declared basis
    eu_in_us = _decide(_policy(processing_regions=["US"]), "us-east", EnforcedMove.PROCESSING)
    assert not eu_in_us.allowed
