"""The residual-leak estimate: how many released images still show something identifiable.

Input is what the review loop decided (`gateway.review.outcomes.ReviewOutcome`, or anything
with the same fields): only items drawn by the random sample of released assets (reason
`sampled`) and decided by a listed reviewer count; quarantines and flags are not a random
sample, and an `ignored` decision changed nothing. An image counts as a leak for a label when
the reviewer drew at least one box with that label on it.

Every share comes with the exact (Clopper-Pearson) two-sided 95% interval, Wilson's interval
and the exact one-sided 95% upper bound; zero findings are reported as that upper bound, never
as zero. Reviewers miss leaks too: without a calibration (see `calibration`), the estimate is
a lower bound of the true share, and the report says so.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from gateway.reports.binomial import clopper_pearson, samples_needed, upper_bound, wilson
from gateway.reports.model import LeakFigure, ReviewerRecall, ReviewTime

LABELS = ("face", "plate", "text")
ANY = "any"
ALL_VERSIONS = "all"
TARGET_BOUND = 0.005
CONFIDENCE = 0.95
DECIDED = frozenset({"released", "rejected", "reprocess"})
PLACES = 4


class Reviewed(Protocol):
    """The fields of a review outcome this module reads (`ReviewOutcome` has them)."""

    @property
    def reason(self) -> str: ...
    @property
    def decision(self) -> str | None: ...
    @property
    def findings(self) -> tuple[tuple[str, int], ...]: ...
    @property
    def lead_time_seconds(self) -> float | None: ...
    @property
    def policy_version_id(self) -> str | None: ...
    @property
    def original_available(self) -> bool: ...


def decided(item: Reviewed) -> bool:
    """Decided by a listed reviewer (an `ignored` decision changed nothing)."""
    return item.decision in DECIDED


def sampled(items: Iterable[Reviewed]) -> list[Reviewed]:
    return [i for i in items if i.reason == "sampled" and decided(i)]


def found(item: Reviewed, label: str) -> bool:
    if label == ANY:
        return any(n > 0 for _, n in item.findings)
    return any(n > 0 for name, n in item.findings if name == label)


def down(value: float) -> str:
    """A lower bound as a decimal string, rounded down (never overstates what is known)."""
    return f"{math.floor(value * 10**PLACES) / 10**PLACES:.{PLACES}f}"


def up(value: float) -> str:
    """An upper bound as a decimal string, rounded up (never understates the risk)."""
    return f"{math.ceil(value * 10**PLACES - 1e-9) / 10**PLACES:.{PLACES}f}"


def percent(value: str) -> str:
    return f"{float(value) * 100:.2f}%"


def figure(
    label: str, version: str, findings: int, samples: int, *, target: float = TARGET_BOUND
) -> LeakFigure:
    exact = clopper_pearson(findings, samples, confidence=CONFIDENCE)
    score = wilson(findings, samples, confidence=CONFIDENCE)
    bound = up(upper_bound(findings, samples, confidence=CONFIDENCE))
    needed = samples_needed(target, confidence=CONFIDENCE, findings=findings)
    what = "identifiable content (any label)" if label == ANY else f"a {label}"
    where = "all policy versions" if version == ALL_VERSIONS else f"policy {version}"
    if findings == 0:
        said = (
            f"{where}: no sampled image of {samples} showed {what}; the share is at most "
            f"{percent(bound)} (95%, one-sided exact), not zero"
        )
    else:
        said = (
            f"{where}: {findings} of {samples} sampled image(s) showed {what}: "
            f"{percent(f'{findings / samples:.{PLACES}f}')}, 95% interval "
            f"{percent(down(exact.lower))} to {percent(up(exact.upper))} (Clopper-Pearson)"
        )
    return LeakFigure(
        label=label,
        policy_version=version,
        samples=samples,
        findings=findings,
        observed=f"{findings / samples:.{PLACES}f}",
        clopper_pearson_lower=down(exact.lower),
        clopper_pearson_upper=up(exact.upper),
        wilson_lower=down(score.lower),
        wilson_upper=up(score.upper),
        upper_bound_95=bound,
        samples_needed=needed,
        more_samples_needed=max(0, needed - samples),
        statement=said,
    )


def leak_figures(
    items: Iterable[Reviewed],
    *,
    version_names: Mapping[str, str],
    target: float = TARGET_BOUND,
) -> list[LeakFigure]:
    """Per label (and any label), over all policy versions and per version that governed a
    sampled item. `version_names` maps a policy version id to how the report names it."""
    reviewed = sampled(items)
    if not reviewed:
        return []
    groups: dict[str, list[Reviewed]] = {ALL_VERSIONS: reviewed}
    for item in reviewed:
        recorded = item.policy_version_id
        key = version_names.get(recorded or "", recorded or "unrecorded")
        groups.setdefault(key, []).append(item)
    if len(groups) == 2:  # one version: its rows would repeat the "all" rows
        groups = {ALL_VERSIONS: reviewed}
    extra = sorted({n for i in reviewed for n, c in i.findings if c > 0} - set(LABELS))
    return [
        figure(label, version, sum(found(i, label) for i in group), len(group), target=target)
        for version, group in groups.items()
        for label in (*LABELS, *extra, ANY)
    ]


def nearest_rank(values: Sequence[float], share: float) -> float:
    """The nearest-rank percentile: the smallest value with at least `share` of values at or
    below it (an observed value, never an interpolation)."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


def review_time(items: Iterable[Reviewed]) -> list[ReviewTime]:
    """Label Studio's lead time of decided review tasks, overall and per reason."""
    groups: dict[str, list[float]] = {}
    for item in items:
        if decided(item) and item.lead_time_seconds is not None:
            groups.setdefault(ALL_VERSIONS, []).append(float(item.lead_time_seconds))
            groups.setdefault(item.reason, []).append(float(item.lead_time_seconds))
    return [
        ReviewTime(
            reason=key,
            tasks=len(values),
            median_seconds=f"{nearest_rank(values, 0.5):.1f}",
            p90_seconds=f"{nearest_rank(values, 0.9):.1f}",
        )
        for key, values in sorted(groups.items(), key=lambda kv: (kv[0] != ALL_VERSIONS, kv[0]))
    ]


@dataclass(frozen=True, slots=True)
class RecallCount:
    """Planted (deliberately visible) faces on calibration items, and how many reviewers found."""

    planted: int
    found: int


def reviewer_recall(counts: Sequence[RecallCount]) -> ReviewerRecall | None:
    planted = sum(c.planted for c in counts)
    if planted == 0:
        return None
    hit = sum(min(c.found, c.planted) for c in counts)
    exact = clopper_pearson(hit, planted, confidence=CONFIDENCE)
    return ReviewerRecall(
        calibration_items=len(counts),
        planted=planted,
        found=hit,
        recall=f"{hit / planted:.{PLACES}f}",
        clopper_pearson_lower=down(exact.lower),
        clopper_pearson_upper=up(exact.upper),
    )


def corrected_upper(leak_upper: str, recall: ReviewerRecall | None) -> str | None:
    """The leak bound divided by the recall's lower bound: what reviewers would have had to
    miss for the true share to be higher (None: no calibration, or recall bound 0)."""
    if recall is None or float(recall.clopper_pearson_lower) <= 0:
        return None
    return up(min(1.0, float(leak_upper) / float(recall.clopper_pearson_lower)))
