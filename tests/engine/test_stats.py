"""Statistics used to compare configs: checked against textbook and reference values."""

from __future__ import annotations

import math
import random

import pytest

from promptlooper_tui.engine.stats import (
    BOOTSTRAP_MAX_VALUES,
    bootstrap_ci,
    holm,
    mean,
    mean_ci,
    paired_t_test,
    regularized_incomplete_beta,
    student_t_quantile,
    student_t_two_sided,
)


def test_mean() -> None:
    assert mean([0.5, 1.0, 0.0, 0.5]) == 0.5
    with pytest.raises(ValueError):
        mean([])


# --- Student t ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("t", "df", "p"),
    [
        (2.228, 10, 0.05),  # the classic two-sided 5% critical value for df = 10
        (1.0, 1, 0.5),  # Cauchy: P(|T| > 1) = 1/2 exactly
        (2.0, 30, 0.054625),
        (-2.0, 30, 0.054625),
        (12.706, 1, 0.05),
        (2.576, 1e6, 0.01),  # large df approaches the normal distribution
        (0.0, 7, 1.0),
    ],
)
def test_student_t_two_sided_matches_reference_values(t: float, df: float, p: float) -> None:
    assert student_t_two_sided(t, df) == pytest.approx(p, abs=2e-4)


def test_incomplete_beta_known_values() -> None:
    assert regularized_incomplete_beta(1, 1, 0.3) == pytest.approx(0.3)  # uniform CDF
    assert regularized_incomplete_beta(2, 3, 0.4) == pytest.approx(0.5248)
    assert regularized_incomplete_beta(2, 3, 0.9) == pytest.approx(0.9963)
    assert regularized_incomplete_beta(0.5, 0.5, 0.5) == pytest.approx(0.5)
    assert regularized_incomplete_beta(3, 2, 0.0) == 0.0
    assert regularized_incomplete_beta(3, 2, 1.0) == 1.0


# --- paired t-test --------------------------------------------------------------------------


def test_paired_t_test_textbook_example() -> None:
    # Differences 1, 2, 3, 4, 5: mean 3, sd sqrt(2.5), t = 3 / sqrt(0.5) = 4.2426, df = 4.
    a = [3.0, 5.0, 7.0, 9.0, 11.0]
    b = [2.0, 3.0, 4.0, 5.0, 6.0]
    assert paired_t_test(a, b) == pytest.approx(0.013236, abs=1e-5)
    assert paired_t_test(b, a) == pytest.approx(paired_t_test(a, b))


def test_clearly_better_sample_is_significant() -> None:
    rng = random.Random(1)
    base = [rng.random() * 0.5 for _ in range(20)]
    better = [x + 0.3 + rng.uniform(-0.05, 0.05) for x in base]
    assert paired_t_test(better, base) < 1e-6


def test_identical_or_noisy_equal_samples_are_not_significant() -> None:
    rng = random.Random(2)
    a = [rng.random() for _ in range(20)]
    assert paired_t_test(a, a) == 1.0
    assert paired_t_test(a, [x + rng.uniform(-0.01, 0.01) for x in a]) > 0.05


def test_paired_t_test_degenerate_cases() -> None:
    assert paired_t_test([], []) == 1.0
    assert paired_t_test([0.9], [0.1]) == 1.0
    # A constant non-zero gap (0.1 up to float rounding) has zero variance: certain.
    assert paired_t_test([0.6, 0.7, 0.8], [0.5, 0.6, 0.7]) == 0.0
    # Equal up to rounding (0.1 + 0.2 != 0.3) is equal, not "significantly" different.
    assert paired_t_test([0.1 + 0.2, 0.6, 0.7 + 0.1], [0.3, 0.2 * 3, 0.8]) == 1.0
    with pytest.raises(ValueError):
        paired_t_test([1.0, 2.0], [1.0])


# --- Holm -----------------------------------------------------------------------------------


def test_holm_textbook_example() -> None:
    # Sorted: 0.005*4 = 0.02, 0.01*3 = 0.03, 0.03*2 = 0.06, 0.04*1 = 0.04 -> raised to 0.06.
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])


def test_holm_caps_at_one_and_keeps_order() -> None:
    assert holm([0.5, 0.9, 0.4]) == [1.0, 1.0, 1.0]
    assert holm([]) == []
    adjusted = holm([0.001, 0.2, 0.01, 0.03])
    by_p = sorted(range(4), key=[0.001, 0.2, 0.01, 0.03].__getitem__)
    assert [adjusted[i] for i in by_p] == sorted(adjusted)


# --- bootstrap ------------------------------------------------------------------------------


def sample(n: int, seed: int = 0) -> list[float]:
    rng = random.Random(seed)
    return [rng.random() for _ in range(n)]


def test_bootstrap_ci_contains_the_mean() -> None:
    values = sample(50)
    low, high = bootstrap_ci(values)
    assert low < mean(values) < high


def test_bootstrap_ci_narrows_with_more_data() -> None:
    small = bootstrap_ci(sample(10))
    large = bootstrap_ci(sample(400))
    assert large[1] - large[0] < (small[1] - small[0]) / 3


def test_bootstrap_ci_wider_at_higher_confidence() -> None:
    values = sample(40)
    low90, high90 = bootstrap_ci(values, confidence=0.90)
    low99, high99 = bootstrap_ci(values, confidence=0.99)
    assert low99 < low90 and high90 < high99


def test_bootstrap_ci_is_reproducible_by_seed() -> None:
    values = sample(30)
    assert bootstrap_ci(values, seed=7) == bootstrap_ci(values, seed=7)
    assert bootstrap_ci(values, seed="run-a") == bootstrap_ci(values, seed="run-a")
    assert bootstrap_ci(values, seed=7) != bootstrap_ci(values, seed=8)


def test_bootstrap_ci_edge_cases() -> None:
    assert bootstrap_ci([0.4]) == (0.4, 0.4)
    assert bootstrap_ci([0.5] * 10) == pytest.approx((0.5, 0.5))
    with pytest.raises(ValueError):
        bootstrap_ci([])
    with pytest.raises(ValueError):
        bootstrap_ci([0.1, 0.2], confidence=1.0)


def test_bootstrap_ci_of_a_known_distribution_is_close_to_the_normal_interval() -> None:
    values = sample(200, seed=3)
    m = mean(values)
    sd = math.sqrt(sum((v - m) ** 2 for v in values) / (len(values) - 1))
    half = 1.96 * sd / math.sqrt(len(values))
    low, high = bootstrap_ci(values, resamples=2000)
    assert low == pytest.approx(m - half, abs=0.01)
    assert high == pytest.approx(m + half, abs=0.01)


@pytest.mark.parametrize(
    ("df", "expected"), [(1, 12.706), (10, 2.228), (30, 2.042), (1000, 1.9623)]
)
def test_student_t_quantile_matches_tables(df: float, expected: float) -> None:
    assert student_t_quantile(0.05, df) == pytest.approx(expected, abs=1e-3)


def test_mean_ci_of_many_values_agrees_with_the_bootstrap() -> None:
    rng = random.Random(3)
    values = [rng.choice([0.0, 0.5, 0.5, 1.0]) for _ in range(BOOTSTRAP_MAX_VALUES * 3)]
    low, high = mean_ci(values)
    boot_low, boot_high = bootstrap_ci(values, resamples=4000)
    assert low < mean(values) < high
    assert low == pytest.approx(boot_low, abs=0.01) and high == pytest.approx(boot_high, abs=0.01)


def test_mean_ci_of_few_values_is_the_bootstrap() -> None:
    values = [0.1, 0.4, 0.9, 0.7]
    assert mean_ci(values, seed="k") == bootstrap_ci(values, seed="k")
