"""Evolve (issue 14): does the loop write prompts that beat the best hand-written one, and at
what cost against racing the hand-written prompts alone?

    python -m bench.evolve               # 2 sample experiments x 10 seeds
    python -m bench.evolve --seeds 3

For each experiment (sample_experiments/evolve.yaml as it is, and sample_experiments/racing.yaml
run with `strategy: evolve` and a large-model proposer), on the simulated endpoint (its own
process, zero latency), through the Workbench on a temporary SQLite store, for each seed:

1. `racing` over the experiment's own configs (the hand-written prompts): its winner is the
   best hand-written config, and its calls are what evolve's are compared with.
2. `evolve` with the same seed, twice: with no `max_runs` (evolve's default budget: twice a
   grid of the experiment's configs over every item), and `evolve@2x` with `max_runs` set so
   that its calls (the proposer's among them) are at most twice racing's. Its winner is
   rank 1 of its leaderboard (the finalist best on the held-out items).
3. The truth. The simulated endpoint answers are a pure function of the request, so a
   prompt's quality is what it scores on items it was not tuned on. Both winners run on
   `FRESH` new items drawn from the dataset's own pattern (component, verb, object, detail);
   their means there are what the table compares ("fresh"), beside their means on the
   sweep's held-out items. The leader after each generation (the best training mean among
   the prompts proposed so far that were not stopped behind) is scored on the fresh items and
   on the held-out items too, giving the curves per generation.

Aims (issue 14), held to evolve@2x: its winner beats the best hand-written prompt (on the
fresh items) in at least 8 of 10 seeds, with at most 2x racing's calls. Exit status 1 when an
aim is missed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from promptlooper_tui.garbage_collection import collect_less_often
from promptlooper_tui.settings import Settings
from promptlooper_tui.simulated.server import simulated_endpoint_process
from promptlooper_tui.workbench import SweepOverrides, Workbench, open_workbench

SAMPLES = Path(__file__).resolve().parent.parent / "sample_experiments"
FRESH = 240
BEAT_AIM = 0.8
CALLS_AIM = 2.0
#: What racing.yaml needs to evolve: the strategy and a proposer.
EVOLVE_SETTINGS = {
    "strategy": "evolve",
    "generations": 4,
    "proposals": 4,
    "proposer": {"model": "large-model", "params": {"temperature": 0.8}},
    "holdout": 0.3,
}

_COMPONENTS = (
    "Audit log", "Billing", "Importer", "Inbox", "Scheduler", "Dashboard", "Search",
    "Exporter", "Calendar", "Reports", "Sync", "Webhooks", "Uploader", "Notifications",
)  # fmt: skip
_VERBS = ("loads", "exports", "filters", "understands", "encrypts", "supports", "merges")
_OBJECTS = (
    "Contacts", "Templates", "Invoices", "Charts", "Labels", "Projects", "Tickets", "Teams",
    "Attachments", "Reminders", "Comments", "Tags",
)  # fmt: skip
_DETAILS = (
    ("with a", "Signature", "header"), ("as", "CSV", ""), ("in", "Parallel", ""),
    ("from", "Outlook", ""), ("over", "HTTPS", ""), ("for", "Admins", ""),
    ("with", "Markdown", "previews"), ("by", "Priority", ""), ("via", "Slack", ""),
)  # fmt: skip


def fresh_items(count: int, seed: int = 2026) -> list[dict[str, Any]]:
    """New release-note items in the pattern of release_notes.jsonl, with their keywords."""
    rng = random.Random(seed)
    items = []
    for _ in range(count):
        component, verb, thing = rng.choice(_COMPONENTS), rng.choice(_VERBS), rng.choice(_OBJECTS)
        preposition, detail, tail = rng.choice(_DETAILS)
        change = " ".join(w for w in (component, verb, thing, preposition, detail, tail) if w)
        keywords = [component.split()[0], thing, detail]
        items.append({"input": {"change": change}, "keywords": keywords})
    return items


def load_experiment(name: str, base_url: str, sweep: dict[str, Any] | None = None) -> dict:
    """A sample experiment as a dict, its dataset inlined, on the endpoint at `base_url`."""
    doc = yaml.safe_load((SAMPLES / name).read_text())
    dataset = doc["dataset"]
    if isinstance(dataset, dict):
        lines = (SAMPLES / dataset["file"]).read_text().splitlines()
        doc["dataset"] = [json.loads(line) for line in lines if line.strip()]
    doc["endpoint"] = {"base_url": base_url}
    if sweep:
        doc["sweep"] = {**doc.get("sweep", {}), **sweep}
    # The budgets compared are set per sweep: the file's own would hold the default row.
    doc["sweep"].pop("max_runs", None)
    return doc


@dataclass
class Evolved:
    """One evolve sweep of a seed: its calls, its winner and how it does."""

    calls: int
    winner: dict[str, Any]
    held: float | None
    fresh: float
    #: The leader after each generation, on the fresh items and on the sweep's held-out ones.
    curve: list[float] = field(default_factory=list)
    held_curve: list[float] = field(default_factory=list)
    #: The best hand-written config (racing's winner) on the sweep's held-out items.
    hand_held: float = 0.0


@dataclass
class Trial:
    seed: int
    racing_calls: int
    hand: dict[str, Any]  # the best hand-written config (racing's winner)
    hand_fresh: float
    #: "evolve" (evolve's default budget) and "evolve@2x" (max_runs: twice racing's calls).
    evolved: dict[str, Evolved] = field(default_factory=dict)


async def _calls(wb: Workbench, sweep_id: str) -> int:
    summary = await wb.sweep_summary(sweep_id)
    assert summary.status == "completed", (summary.status, summary.error)
    return summary.calls.requested


async def fresh_score(
    wb: Workbench, doc: dict[str, Any], config: dict[str, Any], template: str, label: str
) -> float:
    """The mean score of `config` with prompt `template` on the fresh items."""
    return await score_on(wb, doc, config, template, fresh_items(FRESH), label)


async def score_on(
    wb: Workbench,
    doc: dict[str, Any],
    config: dict[str, Any],
    template: str,
    items: list[dict[str, Any]],
    label: str,
) -> float:
    """The mean score of `config` with prompt `template` on `items` (a grid sweep of one
    config: the simulated endpoint's answers are fixed, so it is exact for those items)."""
    parameter = next(
        name
        for name, value in doc["parameters"].items()
        if isinstance(value, str | list)
        and set(value if isinstance(value, list) else [value]) <= set(doc["prompts"])
    )
    parameters = {}
    for name, raw in doc["parameters"].items():
        value = config.get(name, raw)
        # A list value (a stop list) would read as a categorical parameter: one value of it.
        parameters[name] = [value] if isinstance(value, list) and name in config else value
    parameters[parameter] = "winner"
    truth = {
        **doc,
        "name": f"fresh-{label}",
        "parameters": parameters,
        "prompts": {"winner": template},
        "dataset": items,
        "sweep": {"strategy": "grid", "max_concurrency": 16},
    }
    experiment = (await wb.import_text(yaml.safe_dump(truth, sort_keys=False))).id
    sweep_id = await wb.create_sweep(experiment, SweepOverrides())
    await wb.run_sweep(sweep_id)
    board = await wb.ranking(sweep_id, top=1)
    return board.entries[0].score


async def evolve_once(
    wb: Workbench,
    experiment: str,
    doc: dict[str, Any],
    seed: int,
    label: str,
    hand: dict[str, Any],
    **budget: Any,
) -> Evolved:
    sweep_id = await wb.create_sweep(
        experiment, SweepOverrides(strategy="evolve", seed=seed, **budget)
    )
    await wb.run_sweep(sweep_id)
    board = await wb.ranking(sweep_id, top=None)
    evolution = await wb.evolution(sweep_id)
    winner = board.entries[0]

    def prompt_of(config: dict[str, Any]) -> str:
        return str(config.get(evolution.parameter) or next(iter(evolution.prompts)))

    def score(config: dict[str, Any], tag: str) -> Any:
        template = evolution.template(prompt_of(config))
        assert template is not None
        return fresh_score(wb, doc, config, template, f"{label}-{tag}")

    held_items = [doc["dataset"][i] for i in evolution.holdout_items]

    def held(config: dict[str, Any], tag: str) -> Any:
        template = evolution.template(prompt_of(config))
        assert template is not None
        return score_on(wb, doc, config, template, held_items, f"{label}-{tag}-held")

    result = Evolved(
        calls=await _calls(wb, sweep_id),
        winner=winner.config,
        held=winner.holdout_score,
        fresh=await score(winner.config, "winner"),
        hand_held=await held(hand, "hand"),
    )
    # The leader after each generation: the best training mean among the prompts proposed by
    # then, leaving out those stopped behind the leader after a few items.
    for generation in range(len(evolution.generations) + 1):
        names = set(evolution.prompts) | {
            p.name for g in evolution.generations[:generation] for p in g.proposals if p.name
        }
        standing = [
            e
            for e in board.entries
            if prompt_of(e.config) in names
            and e.train_score is not None
            and (e.decision is None or e.decision.state != "behind")
        ]
        leader = max(standing, key=lambda e: e.train_score or 0.0) if standing else winner
        result.curve.append(await score(leader.config, f"g{generation}"))
        result.held_curve.append(await held(leader.config, f"g{generation}"))
    return result


async def run_seed(wb: Workbench, doc: dict[str, Any], name: str, seed: int) -> Trial:
    experiment = (await wb.import_text(yaml.safe_dump(doc, sort_keys=False))).id
    racing_id = await wb.create_sweep(experiment, SweepOverrides(strategy="racing", seed=seed))
    await wb.run_sweep(racing_id)
    racing_calls = await _calls(wb, racing_id)
    racing_board = await wb.ranking(racing_id, top=None)
    hand = next(e for e in racing_board.entries if not e.dropped).config
    label = f"{name}-{seed}"
    prompt = doc["prompts"][
        next(v for v in hand.values() if isinstance(v, str) and v in doc["prompts"])
    ]
    trial = Trial(seed, racing_calls, hand, await fresh_score(wb, doc, hand, prompt, label))
    generations = doc["sweep"]["generations"]
    trial.evolved["evolve"] = await evolve_once(wb, experiment, doc, seed, f"{label}-free", hand)
    # Twice racing's calls, the proposer's among them.
    trial.evolved["evolve@2x"] = await evolve_once(
        wb, experiment, doc, seed, f"{label}-2x", hand, max_runs=2 * racing_calls - generations
    )
    return trial


async def measure(
    name: str, sweep: dict[str, Any] | None, seeds: int, base_url: str
) -> list[Trial]:
    trials = []
    with tempfile.TemporaryDirectory() as home:
        async with open_workbench(Settings(Path(home))) as wb:
            for seed in range(seeds):
                doc = load_experiment(name, base_url, sweep)
                trials.append(await run_seed(wb, doc, name.removesuffix(".yaml"), seed))
    return trials


def report(name: str, trials: list[Trial]) -> bool:
    """Print the table of one experiment; whether evolve@2x met the aims."""
    print(f"\n{name}: {len(trials)} seeds; scores on {FRESH} fresh items")
    met = True
    for label in ("evolve", "evolve@2x"):
        print(
            f"\n{label}\n{'seed':>4} {'racing':>7} {label:>9} {'ratio':>6}  {'hand':>6} "
            f"{'held-out':>8} {'winner':>6}  {'gain':>6}  leader after each generation"
        )
        for t in trials:
            e = t.evolved[label]
            print(
                f"{t.seed:>4} {t.racing_calls:>7} {e.calls:>9} {e.calls / t.racing_calls:>6.2f}  "
                f"{t.hand_fresh:>6.3f} {_num(e.held):>8} {e.fresh:>6.3f}  "
                f"{e.fresh - t.hand_fresh:+6.3f}  {' '.join(f'{v:.3f}' for v in e.curve)}"
            )
        print(
            f"{label}: the held-out items of each seed, the best hand-written prompt and the leader"
        )
        print("after each generation (the sweep chose its winner on these items)")
        for t in trials:
            e = t.evolved[label]
            curve = " ".join(f"{v:.3f}" for v in e.held_curve)
            print(f"{t.seed:>4}  hand {e.hand_held:.3f}  per generation {curve}")
        beats = sum(t.evolved[label].fresh > t.hand_fresh for t in trials)
        ratios = [t.evolved[label].calls / t.racing_calls for t in trials]
        beat_ok = beats >= BEAT_AIM * len(trials)
        calls_ok = max(ratios) <= CALLS_AIM
        aimed = label == "evolve@2x"
        met = met and (not aimed or (beat_ok and calls_ok))
        gain = statistics.fmean(t.evolved[label].fresh - t.hand_fresh for t in trials)
        print(
            f"beats the best hand-written prompt in {beats}/{len(trials)} seeds "
            f"({_aim(aimed, beat_ok, f'>= {BEAT_AIM:.0%}')}); calls vs racing: median "
            f"{statistics.median(ratios):.2f}x, max {max(ratios):.2f}x "
            f"({_aim(aimed, calls_ok, f'<= {CALLS_AIM:g}x')}); mean gain {gain:+.3f}"
        )
    return met


def _aim(aimed: bool, ok: bool, aim: str) -> str:
    return f"aim {aim}: {'ok' if ok else 'MISSED'}" if aimed else "no aim"


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


async def main(seeds: int) -> int:
    started = time.perf_counter()
    met = True
    with simulated_endpoint_process() as base_url:
        for name, sweep in (("evolve.yaml", None), ("racing.yaml", EVOLVE_SETTINGS)):
            trials = await measure(name, sweep, seeds, base_url)
            met = report(name, trials) and met
    print(f"\nwall time {time.perf_counter() - started:.1f} s")
    return 0 if met else 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=10, help="seeds per experiment (10)")
    arguments = parser.parse_args()
    collect_less_often()
    sys.exit(asyncio.run(main(arguments.seeds)))
