"""Confidence bounds for a proportion seen as x findings in n samples, without scipy.

Clopper-Pearson (exact) bounds are quantiles of beta distributions; the regularized incomplete
beta function is evaluated with its continued fraction (Lentz's method, as in Numerical Recipes
§6.4) and inverted by bisection, which is slow by numerical standards (about 60 evaluations)
and cannot fail to converge: the function is monotone on [0, 1]. Wilson's score interval needs
only the normal quantile (the standard library's `NormalDist`).

Zero findings never give a zero rate: the interval is [0, upper], and what a report states is
the upper bound. The one-sided bound at confidence c for x = 0 is 1 - (1 - c)^(1/n) (for 95%,
about 3/n, the "rule of three"); the sample size a target bound needs follows from it:
n = ceil(ln(1 - c) / ln(1 - p)), 598 for p = 0.5% at 95%.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist

_EPS = 1e-15
_TINY = 1e-300
_MAX_TERMS = 500
_BISECTIONS = 80


@dataclass(frozen=True, slots=True)
class Interval:
    """A two-sided interval around the observed share `x / n`."""

    findings: int
    samples: int
    lower: float
    upper: float

    @property
    def observed(self) -> float:
        return self.findings / self.samples


def _check(findings: int, samples: int, confidence: float) -> None:
    if samples <= 0:
        raise ValueError(f"no interval without samples (n = {samples})")
    if not 0 <= findings <= samples:
        raise ValueError(f"findings must lie in [0, n]; got x = {findings}, n = {samples}")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must lie in (0, 1); got {confidence}")


def _beta_fraction(x: float, a: float, b: float) -> float:
    """The continued fraction of I_x(a, b), converging fast for x < (a + 1) / (a + b + 2)."""
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > _TINY else _TINY)
    h = d
    for m in range(1, _MAX_TERMS + 1):
        m2 = 2 * m
        for numerator in (
            m * (b - m) * x / ((qam + m2) * (a + m2)),
            -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2)),
        ):
            d = 1.0 + numerator * d
            d = 1.0 / (d if abs(d) > _TINY else _TINY)
            c = 1.0 + numerator / c
            c = c if abs(c) > _TINY else _TINY
            h *= d * c
        if abs(d * c - 1.0) < _EPS:
            return h
    raise ArithmeticError(f"incomplete beta did not converge (x={x}, a={a}, b={b})")


def regularized_beta(x: float, a: float, b: float) -> float:
    """I_x(a, b), the CDF at x of the Beta(a, b) distribution (a, b > 0)."""
    if a <= 0 or b <= 0:
        raise ValueError(f"beta parameters must be positive; got a={a}, b={b}")
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    log_front = (
        math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    )
    front = math.exp(log_front)
    if x < (a + 1.0) / (a + b + 2.0):
        return front * _beta_fraction(x, a, b) / a
    return 1.0 - front * _beta_fraction(1.0 - x, b, a) / b


def beta_quantile(q: float, a: float, b: float) -> float:
    """The x with I_x(a, b) = q, by bisection (monotone, so it always converges)."""
    if not 0.0 <= q <= 1.0:
        raise ValueError(f"a quantile needs q in [0, 1]; got {q}")
    low, high = 0.0, 1.0
    for _ in range(_BISECTIONS):
        mid = (low + high) / 2.0
        if regularized_beta(mid, a, b) < q:
            low = mid
        else:
            high = mid
    return (low + high) / 2.0


def clopper_pearson(findings: int, samples: int, *, confidence: float = 0.95) -> Interval:
    """The exact two-sided interval: each tail holds at most (1 - confidence) / 2."""
    _check(findings, samples, confidence)
    tail = (1.0 - confidence) / 2.0
    x, n = findings, samples
    lower = 0.0 if x == 0 else beta_quantile(tail, x, n - x + 1)
    upper = 1.0 if x == n else beta_quantile(1.0 - tail, x + 1, n - x)
    return Interval(x, n, lower, upper)


def upper_bound(findings: int, samples: int, *, confidence: float = 0.95) -> float:
    """The exact one-sided upper bound: the true share exceeds it with probability at most
    1 - confidence. For zero findings this is 1 - (1 - confidence)^(1/n)."""
    _check(findings, samples, confidence)
    if findings == samples:
        return 1.0
    if findings == 0:
        return -math.expm1(math.log(1.0 - confidence) / samples)
    return beta_quantile(confidence, findings + 1, samples - findings)


def wilson(findings: int, samples: int, *, confidence: float = 0.95) -> Interval:
    """Wilson's score interval (Wilson 1927), without continuity correction."""
    _check(findings, samples, confidence)
    z = NormalDist().inv_cdf(1.0 - (1.0 - confidence) / 2.0)
    n, p = float(samples), findings / samples
    denominator = 1.0 + z * z / n
    centre = (p + z * z / (2.0 * n)) / denominator
    spread = z * math.sqrt(p * (1.0 - p) / n + z * z / (4.0 * n * n)) / denominator
    lower = 0.0 if findings == 0 else max(0.0, centre - spread)
    upper = 1.0 if findings == samples else min(1.0, centre + spread)
    return Interval(findings, samples, lower, upper)


def samples_needed(target: float, *, confidence: float = 0.95, findings: int = 0) -> int:
    """The smallest n at which `findings` findings in n samples still give a one-sided upper
    bound at or below `target`. With no finding: ceil(ln(1 - c) / ln(1 - target))."""
    if not 0.0 < target < 1.0:
        raise ValueError(f"a target bound must lie in (0, 1); got {target}")
    if findings < 0:
        raise ValueError(f"findings cannot be negative; got {findings}")
    if findings == 0:
        # the tiny slack keeps an exact ratio (e.g. ln 0.5 / ln 0.5) from rounding up by one
        return max(1, math.ceil(math.log(1.0 - confidence) / math.log1p(-target) - 1e-9))
    # the bound falls as n grows with x fixed: find a bracket by doubling, then bisect
    high = max(findings + 1, math.ceil(findings / target))
    while upper_bound(findings, high, confidence=confidence) > target:
        high *= 2
    low = findings  # upper_bound(x, x) = 1 > target
    while high - low > 1:
        mid = (low + high) // 2
        if upper_bound(findings, mid, confidence=confidence) > target:
            low = mid
        else:
            high = mid
    return high
