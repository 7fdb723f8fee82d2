"""Statistics for comparing configs: means, bootstrap intervals, paired t-tests, Holm.

Pure Python (no numpy/scipy): the sample sizes are a dataset's items, at most thousands.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence

# Continued-fraction settings for the incomplete beta function: converges in well under 100
# iterations for every (a, b, x) a t-test produces; EPS is near double precision.
_MAX_ITERATIONS = 300
_EPS = 3e-16
_TINY = 1e-300
# Relative size below which differences between paired values are floating-point noise.
_ROUNDING = 1e-12


def mean(values: Sequence[float]) -> float:
    """The arithmetic mean; ValueError for no values."""
    if not values:
        raise ValueError("mean of no values")
    return math.fsum(values) / len(values)


def bootstrap_ci(
    values: Sequence[float],
    *,
    confidence: float = 0.95,
    resamples: int = 1000,
    seed: int | str = 0,
) -> tuple[float, float]:
    """A percentile-bootstrap confidence interval of the mean, reproducible by `seed`.

    Resamples `values` with replacement `resamples` times; returns the (1-c)/2 and (1+c)/2
    quantiles (linear interpolation) of the resampled means. One value gives (v, v);
    ValueError for no values, a confidence outside (0, 1) or fewer than 1 resample.
    """
    n = len(values)
    if n == 0:
        raise ValueError("bootstrap of no values")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    if resamples < 1:
        raise ValueError(f"resamples must be at least 1, got {resamples}")
    if n == 1:
        return float(values[0]), float(values[0])
    # One draw of n * resamples values is much faster than `resamples` separate calls.
    draws = random.Random(seed).choices(values, k=n * resamples)
    means = sorted(sum(draws[i : i + n]) / n for i in range(0, n * resamples, n))
    tail = (1.0 - confidence) / 2.0
    return _quantile(means, tail), _quantile(means, 1.0 - tail)


#: Above this many values, `mean_ci` uses the Student-t interval instead of the bootstrap.
BOOTSTRAP_MAX_VALUES = 200


def mean_ci(
    values: Sequence[float], *, confidence: float = 0.95, seed: int | str = 0
) -> tuple[float, float]:
    """A confidence interval of the mean: the percentile bootstrap for up to
    BOOTSTRAP_MAX_VALUES values, the Student-t interval beyond.

    The bootstrap costs n x resamples draws, too slow for a live leaderboard of configs with
    thousands of items; at that size the mean of bounded scores is normal to well within the
    bootstrap's own resampling noise, so both give the same interval.
    """
    n = len(values)
    if n <= BOOTSTRAP_MAX_VALUES:
        return bootstrap_ci(values, confidence=confidence, seed=seed)
    centre = mean(values)
    variance = math.fsum((v - centre) ** 2 for v in values) / (n - 1)
    half = student_t_quantile(1.0 - confidence, n - 1) * math.sqrt(variance / n)
    return centre - half, centre + half


def student_t_quantile(alpha: float, df: float) -> float:
    """The t > 0 whose two-sided p-value is `alpha` (bisection on student_t_two_sided)."""
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    low, high = 0.0, 1.0
    while student_t_two_sided(high, df) > alpha:
        low, high = high, high * 2.0
    for _ in range(60):
        middle = (low + high) / 2.0
        if student_t_two_sided(middle, df) > alpha:
            low = middle
        else:
            high = middle
    return (low + high) / 2.0


def _quantile(ordered: Sequence[float], q: float) -> float:
    """The q-quantile of sorted values, interpolating linearly between order statistics."""
    position = q * (len(ordered) - 1)
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def paired_t_test(a: Sequence[float], b: Sequence[float]) -> float:
    """The two-sided p-value of the paired t-test of mean(a - b) == 0.

    1.0 with fewer than 2 pairs or when every difference is zero; 0.0 when every difference
    is the same non-zero number (zero variance). "Same" and "zero" allow for floating-point
    rounding (1e-12 relative to the largest value), so scores that agree up to rounding are
    never reported as significantly different. ValueError when the lengths differ.
    """
    if len(a) != len(b):
        raise ValueError(f"paired samples differ in length: {len(a)} and {len(b)}")
    n = len(a)
    if n < 2:
        return 1.0
    diffs = [x - y for x, y in zip(a, b, strict=True)]
    mean_diff = math.fsum(diffs) / n
    tolerance = _ROUNDING * max(abs(v) for v in (*a, *b))
    if max(diffs) - min(diffs) <= tolerance:
        return 1.0 if abs(mean_diff) <= tolerance else 0.0
    variance = math.fsum((d - mean_diff) ** 2 for d in diffs) / (n - 1)
    t = mean_diff / math.sqrt(variance / n)
    return student_t_two_sided(t, n - 1)


def student_t_two_sided(t: float, df: float) -> float:
    """P(|T| >= |t|) for Student's t with `df` degrees of freedom."""
    if df <= 0:
        raise ValueError(f"degrees of freedom must be positive, got {df}")
    if math.isinf(t):
        return 0.0
    return regularized_incomplete_beta(df / 2.0, 0.5, df / (df + t * t))


def regularized_incomplete_beta(a: float, b: float, x: float) -> float:
    """I_x(a, b) for a, b > 0 and x in [0, 1]."""
    if a <= 0 or b <= 0:
        raise ValueError(f"a and b must be positive, got a={a}, b={b}")
    if not 0.0 <= x <= 1.0:
        raise ValueError(f"x must be in [0, 1], got {x}")
    if x == 0.0 or x == 1.0:
        return x
    log_front = (
        math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    )
    front = math.exp(log_front)
    # The continued fraction converges fast only for x below the mean (a+1)/(a+b+2);
    # above it, use the symmetry I_x(a, b) = 1 - I_{1-x}(b, a).
    if x < (a + 1.0) / (a + b + 2.0):
        return front * _beta_continued_fraction(a, b, x) / a
    return 1.0 - front * _beta_continued_fraction(b, a, 1.0 - x) / b


def _beta_continued_fraction(a: float, b: float, x: float) -> float:
    """The incomplete beta continued fraction, by the modified Lentz method."""
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c = 1.0
    d = 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > _TINY else _TINY)
    h = d
    for m in range(1, _MAX_ITERATIONS + 1):
        m2 = 2 * m
        # Even step of the fraction.
        numerator = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1.0 + numerator * d
        d = 1.0 / (d if abs(d) > _TINY else _TINY)
        c = 1.0 + numerator / c
        c = c if abs(c) > _TINY else _TINY
        h *= d * c
        # Odd step.
        numerator = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1.0 + numerator * d
        d = 1.0 / (d if abs(d) > _TINY else _TINY)
        c = 1.0 + numerator / c
        c = c if abs(c) > _TINY else _TINY
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < _EPS:
            return h
    return h


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm-Bonferroni adjusted p-values, in input order (monotone in p, capped at 1).

    Reject hypothesis i at family-wise level alpha when its adjusted p-value < alpha.
    """
    m = len(p_values)
    order = sorted(range(m), key=lambda i: p_values[i])
    adjusted = [0.0] * m
    running = 0.0
    for rank, index in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p_values[index]))
        adjusted[index] = running
    return adjusted
