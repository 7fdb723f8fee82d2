"""The sequential comparison racing decides with: its error rates under repeated looks, on
simulated races of constructed scores, stay at or below their nominal level."""

from __future__ import annotations

import random
from collections.abc import Callable

import pytest

from promptlooper_tui.engine.sequential import PairedSums, compare

Draw = Callable[[random.Random], float]

#: Score distributions in [0, 1] a scorer gives: pass/fail at several rates (0.5 has the most
#: variance a difference can have, and the most ties early on), keyword coverage out of 4,
#: and continuous scores.
SCORES: dict[str, Draw] = {
    "pass/fail 0.5": lambda rng: float(rng.random() < 0.5),
    "pass/fail 0.85": lambda rng: float(rng.random() < 0.85),
    "3 of 4 keywords": lambda rng: sum(rng.random() < 0.7 for _ in range(4)) / 4,
    "uniform": lambda rng: rng.random(),
}


def ever_rejects(rng: random.Random, draw: Draw, alpha: float, shift: float, looks: int) -> bool:
    """Whether a race of `looks` items, looked at after every item from the third on, ever
    excludes `shift` from the interval of the difference of two configs whose true mean
    difference is `shift`."""
    sums = PairedSums()
    for _ in range(looks):
        sums.add(draw(rng) - draw(rng) + shift)
        if sums.n >= 3:
            comparison = sums.compare(alpha)
            if not comparison.low <= shift <= comparison.high:
                return True
    return False


@pytest.mark.parametrize("name", SCORES)
def test_looking_after_every_item_keeps_the_error_rate_at_its_level(name: str) -> None:
    rng = random.Random(f"null:{name}")
    races = 1500
    errors = sum(ever_rejects(rng, SCORES[name], 0.05, 0.0, 200) for _ in range(races))
    assert errors / races <= 0.05, (name, errors)


def test_the_error_rate_holds_at_the_small_levels_a_race_of_many_configs_uses() -> None:
    # 24 configs: each comparison at 0.05 / 23; pass/fail at 0.5 is the hardest case.
    rng = random.Random("null:small-alpha")
    races = 6000
    errors = sum(
        ever_rejects(rng, SCORES["pass/fail 0.5"], 0.05 / 23, 0.0, 100) for _ in range(races)
    )
    assert errors / races <= 0.05 / 23, errors


def test_a_fixed_look_t_test_would_not_keep_its_level() -> None:
    """Why racing needs the sequence: a classical 95% interval looked at after every item
    excludes the truth far more often than 5% of races."""
    rng = random.Random("null:classical")
    draw = SCORES["pass/fail 0.5"]
    races, wrong = 500, 0
    for _ in range(races):
        diffs: list[float] = []
        for _ in range(200):
            diffs.append(draw(rng) - draw(rng))
            n = len(diffs)
            if n >= 3:
                mean = sum(diffs) / n
                variance = sum((d - mean) ** 2 for d in diffs) / (n - 1)
                if variance and abs(mean) > 1.96 * (variance / n) ** 0.5:
                    wrong += 1
                    break
    assert wrong / races > 0.2


def test_a_real_difference_is_found_within_tens_of_items() -> None:
    rng = random.Random("power")
    found_at = []
    for _ in range(200):
        sums = PairedSums()
        while sums.n < 400:
            # Keyword coverage of 8 keywords at 0.85 against 0.6: a clear difference.
            sums.add(
                sum(rng.random() < 0.85 for _ in range(8)) / 8
                - sum(rng.random() < 0.6 for _ in range(8)) / 8
            )
            if sums.n >= 3 and sums.compare(0.05 / 23).low > 0:
                break
        found_at.append(sums.n)
    found_at.sort()
    assert found_at[len(found_at) // 2] <= 30, found_at


def test_p_value_says_what_the_interval_says() -> None:
    rng = random.Random("p")
    for _ in range(200):
        diffs = [rng.random() - rng.random() + 0.1 for _ in range(rng.randrange(3, 60))]
        comparison = compare(diffs, 0.01)
        edges = (comparison.low - 1e-9, comparison.high + 1e-9)
        # A difference beyond [-1, 1] is impossible: the interval is clipped there.
        for tested in [t for t in (0.0, 0.05, -0.05, *edges) if -1 < t < 1]:
            inside = comparison.low <= tested <= comparison.high
            assert (comparison.p_value(tested) > 0.01) == inside, (tested, comparison)


def test_equivalence_is_declared_only_inside_the_margin() -> None:
    rng = random.Random("equivalence")
    margin = 0.05
    # A true difference exactly at the margin: declaring it equivalent is the error.
    wrong = 0
    races = 800
    for _ in range(races):
        sums = PairedSums()
        for _ in range(300):
            sums.add(0.3 * (rng.random() - rng.random()) + margin)
            if sums.n >= 3 and sums.compare(0.05).below(margin):
                wrong += 1
                break
    assert wrong / races <= 0.05, wrong
    # No difference, little noise: equivalence is found, with a p-value under the level.
    same = compare([0.02 * (rng.random() - 0.5) for _ in range(40)], 0.05)
    assert same.below(margin) and same.equivalence_p(margin) <= 0.05


def test_bad_levels_are_refused_and_nothing_known_says_nothing() -> None:
    with pytest.raises(ValueError, match="alpha"):
        compare([0.1], 1.0)
    empty = compare([], 0.05)
    assert (empty.low, empty.high, empty.p_value()) == (-1.0, 1.0, 1.0)
