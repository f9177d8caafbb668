"""Binomial bounds against published values, closed forms and exact binomial sums."""

from __future__ import annotations

import math
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.reports.binomial import (
    beta_quantile,
    clopper_pearson,
    regularized_beta,
    samples_needed,
    upper_bound,
    wilson,
)

# Newcombe RG (1998), "Two-sided confidence intervals for the single proportion: comparison of
# seven methods", Stat Med 17:857-872, Table II: method 3 (Wilson score) and 5 (exact).
NEWCOMBE = [
    # x, n, Wilson lower, Wilson upper, exact lower, exact upper
    (81, 263, 0.2553, 0.3662, 0.2527, 0.3676),
    (15, 148, 0.0624, 0.1605, 0.0578, 0.1617),
    (0, 20, 0.0, 0.1611, 0.0, 0.1684),
    (1, 29, 0.0061, 0.1718, 0.0009, 0.1776),
]
# Clopper-Pearson 95% from standard tables (e.g. Geigy Scientific Tables; R binom.test).
EXACT = [(0, 10, 0.0, 0.3085), (1, 10, 0.0025, 0.4450), (5, 100, 0.0164, 0.1128)]


@pytest.mark.parametrize(("x", "n", "wl", "wu", "el", "eu"), NEWCOMBE)
def test_newcombe_table(x: int, n: int, wl: float, wu: float, el: float, eu: float) -> None:
    w, e = wilson(x, n), clopper_pearson(x, n)
    assert (round(w.lower, 4), round(w.upper, 4)) == (wl, wu)
    assert (round(e.lower, 4), round(e.upper, 4)) == (el, eu)


@pytest.mark.parametrize(("x", "n", "lower", "upper"), EXACT)
def test_clopper_pearson_tables(x: int, n: int, lower: float, upper: float) -> None:
    e = clopper_pearson(x, n)
    assert (round(e.lower, 4), round(e.upper, 4)) == (lower, upper)


def test_wilson_standard_examples() -> None:
    # 0/10 and 1/10 (e.g. Agresti & Coull 1998; Brown, Cai & DasGupta 2001)
    assert round(wilson(0, 10).upper, 4) == 0.2775
    one = wilson(1, 10)
    assert (round(one.lower, 4), round(one.upper, 4)) == (0.0179, 0.4042)


def test_closed_forms_at_the_edges() -> None:
    for n in (1, 7, 50, 598):
        assert clopper_pearson(0, n).upper == pytest.approx(1 - 0.025 ** (1 / n), abs=1e-12)
        assert clopper_pearson(n, n).lower == pytest.approx(0.025 ** (1 / n), abs=1e-12)
        assert upper_bound(0, n) == pytest.approx(1 - 0.05 ** (1 / n), rel=1e-12)
    assert regularized_beta(0.3, 1, 1) == pytest.approx(0.3)  # uniform
    assert regularized_beta(0.3, 2, 1) == pytest.approx(0.09)  # x^a for b = 1
    assert beta_quantile(0.5, 3, 3) == pytest.approx(0.5)  # symmetric


def test_samples_needed_for_a_target_bound() -> None:
    assert samples_needed(0.005) == 598 == math.ceil(math.log(0.05) / math.log(1 - 0.005))
    assert samples_needed(0.01) == 299
    assert upper_bound(0, 598) <= 0.005 < upper_bound(0, 597)
    with_two = samples_needed(0.005, findings=2)
    assert upper_bound(2, with_two) <= 0.005 < upper_bound(2, with_two - 1)


def test_bad_input_is_refused() -> None:
    for args in ((1, 0), (-1, 5), (6, 5)):
        with pytest.raises(ValueError, match="n"):
            clopper_pearson(*args)
    with pytest.raises(ValueError, match="target"):
        samples_needed(0.0)


def _binomial_cdf(x: int, n: int, p: float) -> float:
    q = Fraction(p)
    return float(sum(math.comb(n, k) * q**k * (1 - q) ** (n - k) for k in range(x + 1)))


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 60).flatmap(lambda n: st.tuples(st.integers(0, n - 1), st.just(n))))
def test_exact_upper_bound_solves_the_binomial_tail(case: tuple[int, int]) -> None:
    x, n = case
    # at the one-sided bound, P(X <= x) is exactly 5%: an oracle independent of the beta code
    assert _binomial_cdf(x, n, upper_bound(x, n)) == pytest.approx(0.05, abs=1e-9)


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 400).flatmap(lambda n: st.tuples(st.integers(0, n), st.just(n))))
def test_bounds_bracket_the_observed_share_and_are_monotone(case: tuple[int, int]) -> None:
    x, n = case
    e, w = clopper_pearson(x, n), wilson(x, n)
    for interval in (e, w):
        assert 0.0 <= interval.lower <= x / n <= interval.upper <= 1.0
    assert e.lower <= upper_bound(x, n) <= e.upper  # the one-sided bound lies inside
    if x < n:
        assert clopper_pearson(x + 1, n).upper >= e.upper  # more findings, higher bounds
        assert wilson(x + 1, n).lower >= w.lower
    assert clopper_pearson(x, n + 1).lower <= e.lower + 1e-12  # same findings, more samples
    assert upper_bound(x, n, confidence=0.99) >= upper_bound(x, n, confidence=0.9)


@settings(max_examples=20, deadline=None)
@given(st.integers(1, 30), st.floats(0.001, 0.999))
def test_clopper_pearson_covers_at_least_95_percent(n: int, p: float) -> None:
    # the exact interval is conservative: summed over every outcome, it holds p >= 95%
    coverage = sum(
        math.comb(n, x) * p**x * (1 - p) ** (n - x)
        for x in range(n + 1)
        if clopper_pearson(x, n).lower <= p <= clopper_pearson(x, n).upper
    )
    assert coverage >= 0.95 - 1e-9
