"""Decisions (issue 13): does a sweep find the best config, and on what share of the grid's calls?

    python -m bench.decisions              # 3 spaces x 20 seeds, 200 items
    python -m bench.decisions --quick      # 5 seeds
    python -m bench.decisions --seeds 10 --items 150
    python -m bench.decisions --guided-samples 12   # guided proposes at most 12 configs

For each space of `bench.decision_spaces` (a single clear best, a tied group at the top, a
numeric range whose best lies inside), on the simulated endpoint at zero latency, through the
Workbench (the real engine) on a temporary SQLite store of its own:

1. True means. The full `grid` sweep runs once. The simulated endpoint is a pure function of the
   request, so a config's mean over the whole dataset is not an estimate but exact for that
   dataset: it is the config's true mean. The grid also fills the response cache, so the sweeps
   below replay from it (fast); each still counts every run it made (completed + failed) as a
   call it would have paid, and the grid's calls are its runs.
2. For each seed (`sweep.seed` 0..N-1): a `racing` sweep; `racing30`, the same race with a
   budget (`sweep.max_runs`) of 30 % of the grid's runs, where its best survivor wins if the
   race has not ended; a `guided` sweep (it proposes configs in waves from the best so far and
   races them; `samples` = the grid's configs: it may propose every one) and `guided30`, the
   same with `max_runs` = 30 % of the grid's runs; and, as a baseline with no aim, `random` at
   the budget guided30 used on that seed (samples = round(guided30's calls / items), at least
   1): guided search should beat random at the same budget.
3. A sweep's winner is the first entry of its leaderboard (rank order) that racing did not drop.
   It is correct when its true mean is within `min_effect` (the sweep setting, default 0.02) of
   the best true mean; the share that picked exactly the true best is printed beside it.

The table gives, per space and strategy, the share of seeds correct, the share exactly best,
and the calls used as a share of the grid's (mean, min-max), beside the aims: correct >= 95 %
and calls <= 30 % of the grid's, for racing and guided with and without the budget. Before it,
each space's top 5 true means and how noisy its per-item scores are: the standard deviation of
the best config's per-item score, and of the per-item difference between the best two (what a
paired test sees). Exit status 1 when an aim is missed, else 0.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from promptlooper_tui.domain.experiment import SweepSettings
from promptlooper_tui.garbage_collection import collect_less_often
from promptlooper_tui.settings import Settings
from promptlooper_tui.simulated.server import simulated_endpoint_process
from promptlooper_tui.workbench import SweepOverrides, Workbench, open_workbench

from .decision_spaces import SPACES, DecisionSpace

CORRECT_AIM = 0.95
CALLS_AIM = 0.30
#: Strategies held to the aims; random is printed as a baseline.
AIMED = ("racing", "racing30", "guided", "guided30")
#: The rows of the table: racing and guided, each also with a budget (`max_runs`) of 30 % of
#: the grid's runs; random at guided30's budget.
STRATEGIES = ("racing", "racing30", "guided", "guided30", "random")


def config_id(config: Mapping[str, Any]) -> str:
    """A config as canonical JSON: the same config from any sweep gives the same id."""
    return json.dumps(config, sort_keys=True, separators=(",", ":"))


@dataclass(frozen=True)
class Truth:
    """What the grid sweep says of a space: every config's exact mean on the dataset."""

    means: dict[str, float]
    grid_calls: int
    items: int
    #: Standard deviation of the best config's per-item score, and of the per-item difference
    #: between the best two configs.
    best_sd: float
    pair_sd: float

    @property
    def ranked(self) -> list[tuple[str, float]]:
        return sorted(self.means.items(), key=lambda entry: -entry[1])

    @property
    def best(self) -> float:
        return self.ranked[0][1]

    @property
    def configs(self) -> int:
        return len(self.means)


@dataclass(frozen=True)
class Trial:
    """One sweep of one seed: its winner and the calls it made."""

    strategy: str
    seed: int
    winner: str
    calls: int


@dataclass
class Row:
    """One strategy on one space, over every seed."""

    space: str
    strategy: str
    trials: list[Trial] = field(default_factory=list)

    def correct(self, truth: Truth, min_effect: float) -> float:
        hits = [truth.best - truth.means[t.winner] <= min_effect for t in self.trials]
        return sum(hits) / len(hits)

    def exactly_best(self, truth: Truth) -> float:
        best = truth.ranked[0][0]
        return sum(t.winner == best for t in self.trials) / len(self.trials)

    def call_shares(self, truth: Truth) -> list[float]:
        return [t.calls / truth.grid_calls for t in self.trials]


async def _item_scores(wb: Workbench, sweep_id: str) -> dict[str, dict[int, float]]:
    """{config id: {item index: score}} of every run of a sweep (one repeat)."""
    scores: dict[str, dict[int, float]] = {}
    after = None
    while True:
        page = await wb.list_runs(sweep=sweep_id, limit=10_000, after=after)
        for run in page.items:
            assert run.status == "completed" and run.score is not None, run.error
            scores.setdefault(config_id(run.config), {})[run.item_index] = run.score
        if page.next is None:
            return scores
        after = page.next


async def true_means(wb: Workbench, experiment: str) -> Truth:
    """Run the grid sweep of `experiment`: every config's mean over every item."""
    sweep_id = await wb.create_sweep(experiment, SweepOverrides(strategy="grid"))
    summary = await wb.run_sweep(sweep_id)
    assert summary.status == "completed", summary.status
    scores = await _item_scores(wb, sweep_id)
    items = len(next(iter(scores.values())))
    means = {key: statistics.fmean(by_item.values()) for key, by_item in scores.items()}
    (first, _), (second, _) = sorted(means.items(), key=lambda entry: -entry[1])[:2]
    best, runner_up = scores[first], scores[second]
    return Truth(
        means=means,
        grid_calls=summary.runs.completed + summary.runs.failed,
        items=items,
        best_sd=statistics.stdev(best.values()),
        pair_sd=statistics.stdev(best[i] - runner_up[i] for i in best),
    )


async def run_trial(
    wb: Workbench, experiment: str, label: str, seed: int, **settings: Any
) -> Trial:
    """Run one sweep with these `SweepOverrides`; its winner is its first leaderboard entry
    that racing did not drop."""
    sweep_id = await wb.create_sweep(experiment, SweepOverrides(seed=seed, **settings))
    summary = await wb.run_sweep(sweep_id)
    assert summary.status == "completed", summary.status
    board = await wb.ranking(sweep_id, top=None)
    winner = next(entry for entry in board.entries if not entry.dropped)
    calls = summary.runs.completed + summary.runs.failed
    return Trial(label, seed, config_id(winner.config), calls)


async def measure_space(
    base_url: str, space: DecisionSpace, items: int, seeds: int, guided_samples: int | None = None
) -> tuple[Truth, float, list[Row]]:
    """(true means, min_effect, one row per strategy) of `space`, on a store of its own;
    guided's `samples` are the grid's configs unless `guided_samples` is given."""
    text = space.experiment(base_url, items)
    min_effect = SweepSettings.model_validate(yaml.safe_load(text)["sweep"]).min_effect
    with tempfile.TemporaryDirectory() as home:
        async with open_workbench(Settings(Path(home))) as wb:
            experiment = (await wb.import_text(text)).id
            truth = await true_means(wb, experiment)
            rows = {strategy: Row(space.name, strategy) for strategy in STRATEGIES}
            budget = int(CALLS_AIM * truth.grid_calls)
            # As many as the grid has (a range space needs `samples`): it may propose them all.
            guided_samples = guided_samples or truth.configs
            for seed in range(seeds):
                racing = await run_trial(wb, experiment, "racing", seed, strategy="racing")
                racing30 = await run_trial(
                    wb, experiment, "racing30", seed, strategy="racing", max_runs=budget
                )
                guided = await run_trial(
                    wb, experiment, "guided", seed, strategy="guided", samples=guided_samples
                )
                guided30 = await run_trial(
                    wb,
                    experiment,
                    "guided30",
                    seed,
                    strategy="guided",
                    samples=guided_samples,
                    max_runs=budget,
                )
                configs = min(truth.configs, max(1, round(guided30.calls / truth.items)))
                baseline = await run_trial(
                    wb, experiment, "random", seed, strategy="random", samples=configs
                )
                for trial in (racing, racing30, guided, guided30, baseline):
                    assert trial.winner in truth.means, f"{trial.strategy}: a config off the grid"
                    rows[trial.strategy].trials.append(trial)
    return truth, min_effect, list(rows.values())


def print_truth(space: str, truth: Truth, min_effect: float) -> None:
    near = sum(truth.best - value <= min_effect for value in truth.means.values())
    print(
        f"{space}: {truth.configs} configs x {truth.items} items, {near} within {min_effect} of "
        f"the best; per-item score sd {truth.best_sd:.3f} (best config), "
        f"{truth.pair_sd:.3f} (best - second, paired)"
    )
    for rank, (key, value) in enumerate(truth.ranked[:5], 1):
        print(f"  {rank}. {value:.4f}  {key}")


def table_lines(results: list[tuple[str, Truth, float, list[Row]]]) -> tuple[list[str], bool]:
    """The table's lines, and whether every aim was met."""
    lines = [
        f"{'space':<8} {'grid':<10} {'strategy':<8} {'correct':>8} {'(aim)':<12} "
        f"{'exact':>6}  {'calls of grid: mean (min-max)':<30} (aim)"
    ]
    met = True
    for space, truth, min_effect, rows in results:
        for row in rows:
            correct = row.correct(truth, min_effect)
            shares = row.call_shares(truth)
            calls = statistics.fmean(shares)
            aimed = row.strategy in AIMED
            correct_ok = correct >= CORRECT_AIM
            calls_ok = calls <= CALLS_AIM
            met = met and (not aimed or (correct_ok and calls_ok))
            correct_aim = f">= {CORRECT_AIM:.0%} {_verdict(correct_ok)}" if aimed else "baseline"
            calls_aim = f"<= {CALLS_AIM:.0%} {_verdict(calls_ok)}" if aimed else ""
            lines.append(
                f"{space:<8} {f'{truth.configs} x {truth.items}':<10} {row.strategy:<8} "
                f"{correct:>8.0%} {correct_aim:<12} {row.exactly_best(truth):>6.0%}  "
                f"{f'{calls:5.1%} ({min(shares):.1%}-{max(shares):.1%})':<30} {calls_aim}"
            )
    return lines, met


def _verdict(ok: bool) -> str:
    return "ok" if ok else "MISSED"


async def main(seeds: int, items: int, guided_samples: int | None) -> int:
    started = time.perf_counter()
    results = []
    with simulated_endpoint_process() as base_url:
        for space in SPACES:
            space_started = time.perf_counter()
            truth, min_effect, rows = await measure_space(
                base_url, space, items, seeds, guided_samples
            )
            print_truth(space.name, truth, min_effect)
            print(f"  ({time.perf_counter() - space_started:.1f} s; min_effect {min_effect})")
            results.append((space.name, truth, min_effect, rows))
    lines, met = table_lines(results)
    print(f"\n{seeds} seeds; correct: the winner's true mean within min_effect of the best")
    print("\n".join(lines))
    print(f"wall time {time.perf_counter() - started:.1f} s")
    return 0 if met else 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="5 seeds")
    parser.add_argument("--seeds", type=int, default=20, help="seeds per strategy (20)")
    parser.add_argument("--items", type=int, default=200, help="dataset items per space (200)")
    parser.add_argument(
        "--guided-samples", type=int, help="guided's samples (default: the grid's configs)"
    )
    arguments = parser.parse_args()
    collect_less_often()  # as the CLI does
    seeds = 5 if arguments.quick else arguments.seeds
    sys.exit(asyncio.run(main(seeds, arguments.items, arguments.guided_samples)))
