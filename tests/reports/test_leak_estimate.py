"""Residual-leak figures, review time and reviewer recall from review outcomes."""

from __future__ import annotations

from dataclasses import dataclass

from gateway.reports.leak_estimate import (
    RecallCount,
    corrected_upper,
    leak_figures,
    nearest_rank,
    review_time,
    reviewer_recall,
)


@dataclass(frozen=True)
class Outcome:
    """The fields of `gateway.review.outcomes.ReviewOutcome` the estimate reads."""

    reason: str = "sampled"
    decision: str | None = "released"
    findings: tuple[tuple[str, int], ...] = ()
    lead_time_seconds: float | None = None
    policy_version_id: str | None = "pv1"
    original_available: bool = True


def _by(figures, label, version="all"):
    return next(f for f in figures if f.label == label and f.policy_version == version)


def test_zero_findings_are_an_upper_bound_never_zero() -> None:
    figures = leak_figures([Outcome()] * 40, version_names={"pv1": "default v1"})
    face = _by(figures, "face")
    assert (face.samples, face.findings, face.observed) == (40, 0, "0.0000")
    assert face.upper_bound_95 == "0.0722"  # 1 - 0.05^(1/40) = 0.07214, rounded up
    assert face.clopper_pearson_lower == "0.0000" and face.clopper_pearson_upper == "0.0881"
    assert "at most 7.22%" in face.statement and "not zero" in face.statement
    assert face.samples_needed == 598 and face.more_samples_needed == 558
    assert [f.label for f in figures] == ["face", "plate", "text", "any"]  # one version: no split


def test_only_decided_samples_count_and_labels_are_separate() -> None:
    items = [
        *[Outcome()] * 96,
        Outcome(findings=(("face", 1),)),
        Outcome(findings=(("face", 2), ("plate", 1))),
        Outcome(findings=(("plate", 0),)),  # a zero count is no finding
        Outcome(decision="rejected", findings=(("text", 1),)),
        Outcome(decision="ignored", findings=(("face", 5),)),  # not a reviewer: changed nothing
        Outcome(decision=None),  # still open
        Outcome(reason="quarantined", findings=(("face", 1),)),  # not a random sample
        Outcome(reason="calibration", findings=(("face", 1),)),
    ]
    figures = leak_figures(items, version_names={})
    assert {f.label: (f.findings, f.samples) for f in figures} == {
        "face": (2, 100),
        "plate": (1, 100),
        "text": (1, 100),
        "any": (3, 100),
    }
    anything = _by(figures, "any")
    assert anything.observed == "0.0300"
    assert (anything.clopper_pearson_lower, anything.clopper_pearson_upper) == ("0.0062", "0.0852")
    assert anything.wilson_lower <= "0.0300" <= anything.wilson_upper
    assert "3 of 100 sampled image(s) showed identifiable content" in anything.statement
    assert "0.62% to 8.52%" in anything.statement


def test_figures_per_policy_version() -> None:
    items = [Outcome(policy_version_id="a")] * 10 + [
        Outcome(policy_version_id="b", findings=(("face", 1),))
    ] * 2
    figures = leak_figures(items, version_names={"a": "strict v1", "b": "strict v2"})
    assert {f.policy_version for f in figures} == {"all", "strict v1", "strict v2"}
    assert (_by(figures, "face", "strict v2").findings, _by(figures, "face", "all").samples) == (
        2,
        12,
    )
    assert leak_figures([Outcome(reason="flagged")], version_names={}) == []


def test_review_time_is_nearest_rank() -> None:
    assert nearest_rank([5.0, 1.0, 3.0, 2.0, 4.0], 0.5) == 3.0
    assert nearest_rank([float(s) for s in range(1, 11)], 0.9) == 9.0
    items = [Outcome(lead_time_seconds=float(s)) for s in range(1, 11)] + [
        Outcome(reason="quarantined", lead_time_seconds=30.0),
        Outcome(decision="ignored", lead_time_seconds=999.0),
        Outcome(lead_time_seconds=None),
    ]
    rows = {r.reason: (r.tasks, r.median_seconds, r.p90_seconds) for r in review_time(items)}
    assert rows == {
        "all": (11, "6.0", "10.0"),
        "quarantined": (1, "30.0", "30.0"),
        "sampled": (10, "5.0", "9.0"),
    }
    assert review_time([]) == []


def test_reviewer_recall_and_the_corrected_bound() -> None:
    assert reviewer_recall([]) is None
    assert reviewer_recall([RecallCount(planted=0, found=0)]) is None
    recall = reviewer_recall([RecallCount(5, 5), RecallCount(5, 4), RecallCount(0, 1)])
    assert recall is not None
    assert (recall.planted, recall.found, recall.recall) == (10, 9, "0.9000")
    assert (recall.clopper_pearson_lower, recall.clopper_pearson_upper) == ("0.5549", "0.9975")
    assert corrected_upper("0.0100", recall) == "0.0181"  # 0.01 / 0.5549, rounded up
    assert corrected_upper("0.0100", None) is None
