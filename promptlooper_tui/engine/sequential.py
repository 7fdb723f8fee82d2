"""Sequential comparisons of two configs on paired items, valid however often they are looked at.

A race compares configs after every round of items and stops as soon as the data allow. A
classical test looked at after every round rejects far more often than its level says (every
look is another chance of a fluke), so racing uses a confidence sequence instead: intervals
for the mean paired difference that hold at every item count at once, with probability at
least 1 - alpha, so a decision taken at whichever look it first becomes possible keeps its
error rate.

The sequence is the normal-mixture boundary with an estimated variance (Robbins' mixture;
Waudby-Smith, Arnold, Wu, Howard and Ramdas, "Time-uniform central limit theory and asymptotic
confidence sequences", 2021): with n differences of mean m and standard deviation s,

    m +- s * sqrt(2 (n r^2 + 1) / (n^2 r^2) * log(sqrt(n r^2 + 1) / alpha))

where r is tuned to be tightest near `TUNED_FOR` items. It is asymptotic: s is estimated, and
early on an estimate from a few items can be far too small (three equal differences have none).
So s^2 is shrunk towards the largest variance a difference of two scores in [0, 1] can have
(`PRIOR_VARIANCE`, weighted as `PRIOR_WEIGHT` items while fewer than `PRIOR_ITEMS` are in,
less and less after), and the interval is widened as Student's t widens the normal's for a
variance estimated from n values. Together they keep the error rate at or below alpha from the
first look: `tests/engine/test_sequential.py` checks it on simulated races.

The same boundary gives an anytime-valid p-value (the reciprocal of the mixture's e-value,
capped at 1): it is at most alpha exactly when the interval excludes the tested difference.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass

from .stats import student_t_quantile

#: The item count the boundary is tightest at: races decide within tens of items.
TUNED_FOR = 30
#: Shrinkage of the variance estimate: scores lie in [0, 1], so a paired difference lies in
#: [-1, 1], whose variance is at most 1; weighted as this many items.
PRIOR_VARIANCE = 1.0
PRIOR_WEIGHT = 1.5
PRIOR_ITEMS = 5
#: Degrees of freedom at which Student's t is the normal for our purposes.
_NORMAL_DF = 1e9


@dataclass(frozen=True)
class Comparison:
    """What the paired differences (a - b) of `n` items say about the mean difference."""

    n: int
    mean: float
    low: float
    high: float
    #: The e-value's scale: the difference's standard deviation (shrunk) over sqrt(n).
    _spread: float
    _rho2: float

    def p_value(self, difference: float = 0.0) -> float:
        """Anytime-valid p-value of "the mean difference is `difference`" (two-sided)."""
        if self.n == 0:
            return 1.0
        z = (self.mean - difference) / self._spread  # standardised, in units of s/sqrt(n)
        grown = self.n * self._rho2 + 1.0
        log_e = self.n * self._rho2 * z * z / (2.0 * grown) - 0.5 * math.log(grown)
        return 1.0 if log_e <= 0 else math.exp(-log_e)

    def below(self, margin: float) -> bool:
        """Whether the mean difference is confidently inside (-margin, margin)."""
        return -margin < self.low and self.high < margin

    def equivalence_p(self, margin: float) -> float:
        """The p-value of "the mean difference is at least `margin` away from 0": the larger
        of the two one-sided ones (two one-sided tests)."""
        if self.n == 0:
            return 1.0
        return max(self.p_value(margin), self.p_value(-margin))


def compare(differences: Sequence[float], alpha: float) -> Comparison:
    """The confidence sequence's interval at level `alpha` after these paired differences,
    each in [-1, 1]; an empty sequence gives (-1, 1)."""
    sums = PairedSums()
    for difference in differences:
        sums.add(difference)
    return sums.compare(alpha)


class PairedSums:
    """Paired differences seen so far, kept as their count, mean and sum of squared deviations
    (Welford's update), so a look costs the same at any item count."""

    __slots__ = ("mean", "n", "squares")

    def __init__(self) -> None:
        self.n = 0
        self.mean = 0.0
        self.squares = 0.0

    def add(self, difference: float) -> None:
        self.n += 1
        step = difference - self.mean
        self.mean += step / self.n
        self.squares += step * (difference - self.mean)

    def compare(self, alpha: float) -> Comparison:
        if not 0.0 < alpha < 1.0:
            raise ValueError(f"alpha must be in (0, 1), got {alpha}")
        n, mean = self.n, self.mean
        rho2 = _rho_squared(alpha)
        if n == 0:
            return Comparison(0, 0.0, -1.0, 1.0, 1.0, rho2)
        # The prior's weight fades once `PRIOR_ITEMS` items are in: it guards the first looks
        # and leaves later ones, whose estimate is good, to the data.
        prior = PRIOR_WEIGHT * min(1.0, PRIOR_ITEMS / n)
        variance = (prior * PRIOR_VARIANCE + self.squares) / (prior + n - 1)
        spread = math.sqrt(variance / n) * _small_sample_factor(alpha, n)
        grown = n * rho2 + 1.0
        half = spread * math.sqrt(2.0 * grown / (n * rho2) * math.log(math.sqrt(grown) / alpha))
        return Comparison(n, mean, max(-1.0, mean - half), min(1.0, mean + half), spread, rho2)


@functools.lru_cache(maxsize=4096)
def _small_sample_factor(alpha: float, n: int) -> float:
    """How much wider Student's t makes an interval than the normal at `n` values: the variance
    is estimated, and from few values it may be far too small."""
    if n < 2:
        return student_t_quantile(alpha, 1) / student_t_quantile(alpha, _NORMAL_DF)
    return student_t_quantile(alpha, n - 1) / student_t_quantile(alpha, _NORMAL_DF)


def _rho_squared(alpha: float) -> float:
    """The mixture's precision that makes the boundary tightest at `TUNED_FOR` items."""
    log_term = -2.0 * math.log(alpha)
    return (log_term + math.log(log_term + 1.0)) / TUNED_FOR
