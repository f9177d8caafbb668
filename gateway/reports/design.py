"""Review and residual leak, GDPR Art. 25 (data protection by design and by default) and the
inputs of a DPIA (Art. 35(7)): worded from collected facts, never from assumptions."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from gateway.core.models import AssetState
from gateway.lineage.actions import Action
from gateway.reports import leak_estimate as leak
from gateway.reports.binomial import samples_needed
from gateway.reports.facts import Facts
from gateway.reports.model import (
    Count,
    GdprDesignSection,
    GovernanceItem,
    LeakFigure,
    ReviewSection,
    SecurityMeasure,
)
from gateway.reports.sections import (
    REDACTION_LIMITS,
    _action_count,
    _counts,
    _pairs,
    _policies,
    identity,
    retention_lines,
    security_measures,
    weakened_policies,
)

NOT_CALIBRATED = (
    "lower bound: reviewer recall is not calibrated; reviewers miss some leaks, so the true "
    "share may be higher than these figures"
)
METHOD = (
    "Sampled released images decided by a listed reviewer; an image counts for a label when "
    "the reviewer drew at least one box with it. Intervals: Clopper-Pearson (exact) and Wilson, "
    "two-sided 95%; bound: exact one-sided 95% upper bound (for zero findings 1 - 0.05^(1/n)). "
    "Samples needed: the smallest n whose one-sided bound, with the findings seen and no further "
    "one, is at or below the target. Review time: Label Studio's lead time per task, median and "
    "90th percentile (nearest rank)."
)
DPIA_NOTE = (
    "These are the inputs a data protection impact assessment needs under GDPR Art. 35(7), "
    "drawn from the gateway's records. The assessment itself, the advice of the data protection "
    "officer (Art. 35(2)) and its conclusion are the controller's; nothing here concludes it."
)


def review_section(facts: Facts) -> ReviewSection:
    items = facts.reviews
    figures = leak.leak_figures(items, version_names=facts.review_versions)
    recall = leak.reviewer_recall(facts.calibration)
    overall = headline(figures)
    corrected = leak.corrected_upper(overall.upper_bound_95, recall) if overall else None
    return ReviewSection(
        items_by_reason=_tally(i.reason for i in items if i.decision != "ignored"),
        decisions=_tally(i.decision or "open" for i in items),
        originals_missing=sum(1 for i in items if not i.original_available),
        target_bound=f"{leak.TARGET_BOUND:.4f}",
        confidence=f"{leak.CONFIDENCE:.2f}",
        samples_needed_without_findings=samples_needed(
            leak.TARGET_BOUND, confidence=leak.CONFIDENCE
        ),
        residual_leak=figures,
        reviewer_recall=recall,
        bound_kind=NOT_CALIBRATED
        if recall is None
        else f"corrected for measured reviewer recall {recall.recall} (95% lower bound "
        f"{recall.clopper_pearson_lower}, {recall.found} of {recall.planted} planted faces found)",
        corrected_upper_bound=corrected,
        review_time=leak.review_time(items),
        method=METHOD,
    )


def headline(figures: list[LeakFigure]) -> LeakFigure | None:
    """The any-label figure over all policy versions."""
    return next(
        (f for f in figures if f.label == leak.ANY and f.policy_version == leak.ALL_VERSIONS),
        None,
    )


def _tally(keys: Iterable[str]) -> list[Count]:
    found = Counter(keys)
    return [Count(key=k, count=n) for k, n in sorted(found.items())]


def residual_line(section: ReviewSection) -> str:
    """One sentence on the residual leak, as the DPIA and Art. 25 quote it."""
    top = headline(section.residual_leak)
    target = leak.percent(section.target_bound)
    if top is None:
        return (
            "Residual leak: not estimated, no sampled released image has been reviewed yet "
            f"(stating at most {target} at 95% needs {section.samples_needed_without_findings} "
            "sampled images with no finding)."
        )
    recall = (
        f"; corrected for reviewer recall, at most {leak.percent(section.corrected_upper_bound)}"
        if section.corrected_upper_bound
        else f" ({NOT_CALIBRATED})"
    )
    return (
        f"Residual leak: {top.statement}; stating at most {target} at 95% needs "
        f"n = {top.samples_needed} ({top.more_samples_needed} more){recall}."
    )


def gdpr_design(facts: Facts, review: ReviewSection) -> GdprDesignSection:
    return GdprDesignSection(
        article_25=article_25(facts, review),
        dpia_inputs=dpia_inputs(facts, review),
        dpia_note=DPIA_NOTE,
    )


def article_25(facts: Facts, review: ReviewSection) -> list[SecurityMeasure]:
    current = facts.current_policy
    weakened = weakened_policies(facts)
    recall = review.reviewer_recall
    return [
        SecurityMeasure(
            measure="Policy in force (Art. 25(1))",
            detail="Every asset is processed under an immutable, activated policy version; "
            "each record names it; weakening a protection needs an acknowledgement.",
            evidence=f"policies: {_policies(facts)}"
            + (f"; current digest {current.digest}" if current else "")
            + ("; " + " ".join(weakened) if weakened else "; no protection switched off"),
        ),
        SecurityMeasure(
            measure="Redaction before any recipient (Art. 25(1), pseudonymisation)",
            detail="Faces, plates and configured personal text are masked in the pixels of "
            "every released image; the original never leaves the gateway.",
            evidence=f"redaction policy: {_pairs(facts, 'redaction')}; regions redacted: "
            f"{_counts(facts.regions_recorded)}; {facts.assets_with_regions} asset(s) with a "
            f"region; benchmark recall: "
            + (
                "; ".join(f"{r.label} {r.recall} on {r.data_set}" for r in facts.recall)
                or "none on record"
            ),
        ),
        SecurityMeasure(
            measure="Leak check (Art. 25(1))",
            detail="An independent second detector looks at each redacted image; what it "
            "finds is masked or the asset is quarantined, never released unchecked.",
            evidence=f"regions added or strengthened: {_counts(facts.leak_check_by_label)}; "
            f"quarantine reasons: {_counts(facts.quarantine_reasons)}; quarantined now: "
            f"{facts.held(AssetState.QUARANTINED.value)}",
        ),
        SecurityMeasure(
            measure="Human review and measured residual leak (Art. 25(1))",
            detail="Quarantined, flagged and a seeded random sample of released images are "
            "reviewed in Label Studio on the redacted rendition; findings re-redact the image.",
            evidence=f"review policy now: {_pairs(facts, 'review')}; "
            f"review items: {_counts(review.items_by_reason)}; decisions: "
            f"{_counts(review.decisions)}; {residual_line(review)} Reviewer recall: "
            + (
                f"{recall.recall} ({recall.found} of {recall.planted} planted faces)"
                if recall
                else "not calibrated"
            ),
        ),
        SecurityMeasure(
            measure="Data minimisation by default (Art. 25(2))",
            detail="All embedded metadata is stripped; identifiers become keyed pseudonyms; "
            "only redacted images reach Label Studio and the ML backend.",
            evidence=f"pseudonymisation policy: {_pairs(facts, 'pseudonymisation')}; assets "
            f"sent to Label Studio: {sum(r.assets_sent for r in facts.recipients)}",
        ),
        SecurityMeasure(
            measure="Storage limitation and residency by default (Art. 25(2), Art. 5(1)(e))",
            detail="Originals are deleted when their retention ends; data moves only to "
            "regions the policy allows.",
            evidence="; ".join(retention_lines(facts))
            + f"; originals stored now: {facts.originals_stored}; deletions recorded: "
            f"{sum(e.count for e in facts.deletions)}; transfers blocked: "
            f"{sum(t.count for t in facts.blocked)}",
        ),
    ]


def dpia_inputs(facts: Facts, review: ReviewSection) -> list[GovernanceItem]:
    ident = identity(facts)
    open_incidents = sum(1 for i in facts.incidents if i.closed_at is None)
    return [
        GovernanceItem(
            reference="Art. 35(7)(a)",
            title="Systematic description of the processing and its purposes",
            findings=[
                f"Purpose: {ident.purpose.rstrip('.')}; controller: {ident.controller}; "
                f"legal basis: {ident.legal_basis_reference}.",
                f"Data subjects: {', '.join(ident.data_subject_categories)}; personal data: "
                f"{', '.join(ident.personal_data_categories)}.",
                f"Assets: {facts.assets_total} ({_counts(facts.states)}); recipients: "
                + (
                    ", ".join(f"{r.name} ({r.region}, {r.assets_sent})" for r in facts.recipients)
                    or "none"
                )
                + ".",
                f"Processing steps recorded: {_counts(facts.actions)}.",
            ],
        ),
        GovernanceItem(
            reference="Art. 35(7)(b)",
            title="Necessity and proportionality",
            findings=[
                f"Legal basis: {ident.legal_basis_reference}.",
                "Minimisation: annotators and the ML backend receive redacted images only; "
                f"metadata policy: {_pairs(facts, 'pseudonymisation')}.",
                "Retention: " + "; ".join(retention_lines(facts)),
            ],
        ),
        GovernanceItem(
            reference="Art. 35(7)(c)",
            title="Risks to the rights and freedoms of data subjects",
            findings=[
                residual_line(review),
                *REDACTION_LIMITS,
                *weakened_policies(facts),
                f"Incidents: {len(facts.incidents)} recorded, {open_incidents} open; "
                f"quarantined now: {facts.held(AssetState.QUARANTINED.value)}; transfers "
                f"blocked: {sum(t.count for t in facts.blocked)}; vault reads: "
                f"{_action_count(facts, Action.VAULT_READ)}.",
            ],
        ),
        GovernanceItem(
            reference="Art. 35(7)(d)",
            title="Measures envisaged to address the risks",
            findings=[
                *(f"{m.measure}: {m.evidence}." for m in article_25(facts, review)[1:4]),
                *(f"{m.measure}: {m.evidence}." for m in security_measures(facts)),
            ],
        ),
    ]
