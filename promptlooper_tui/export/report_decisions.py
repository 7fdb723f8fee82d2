"""The report's "How the winner was chosen": what the sweep's strategy ran, what it decided
and why, and the calls it made against what the full grid of its configs would take."""

from __future__ import annotations

import json
from typing import Any

from ..domain.experiment import SweepSettings
from ..engine.limits import planned_configs
from ..engine.racing import describe_race
from ..engine.strategies import RACED
from ..store import sweeps as stored_sweeps
from .markdown import line, table, value
from .report_evolution import evolve_rules
from .source import ExportJob

_HOW = {
    "grid": "Every config of the grid ran on every item.",
    "random": "Randomly drawn configs (seeded) each ran on every item.",
}
_GUIDED = (
    "Guided search proposed {tried} configs: some at random first, then waves of mostly "
    "neighbours of the best survivors so far; each wave caught up on the items raced so far, "
    "then raced with the rest."
)


async def how_the_winner_was_chosen(job: ExportJob, settings: dict[str, Any], runs: int) -> str:
    """The section, for the sweep's `settings` (its stored JSON) and the `runs` it made."""
    counts = await stored_sweeps.config_counts(job.db, job.sweep.id)
    assert counts is not None
    items, repeats = len(job.spec.items), settings["repeats"]
    grid_calls = counts["tried"] * items * repeats
    lines = ["## How the winner was chosen", ""]
    strategy = settings["strategy"]
    if strategy not in RACED and job.evolution is None:
        tied = "tied with it: a paired test (Holm-corrected, 95%) cannot tell them apart"
        lines.append(f"{_HOW[strategy]} The winner has the best mean score; configs marked {tied}.")
        return "\n".join(lines)
    if job.evolution is not None:
        lines.append(evolve_rules(settings, job.evolution, items))
    else:
        lines += _race_rules(job, settings, counts["tried"])
    lines += [
        "",
        f"Runs made: **{runs:,}** of the **{grid_calls:,}** that every candidate on every item "
        f"would take ({runs / grid_calls:.0%})."
        if grid_calls
        else "No candidates ran.",
    ]
    decided = await stored_sweeps.race_decisions(job.db, job.sweep.id)
    if not decided:
        lines += ["", "No config was eliminated or declared equivalent."]
        return "\n".join(lines)
    lines += ["", f"{len(decided)} of {counts['tried']} candidates stopped early:", ""]
    lines += table(
        ["config", "decision", "after items", "against (the leader then)", "p"],
        [_decision_row(row) for row in decided],
    )
    return "\n".join(lines)


def _race_rules(job: ExportJob, settings: dict[str, Any], tried: int) -> list[str]:
    """How a race (racing, or guided's waves) decides, for these stored `settings`."""
    guided = [_GUIDED.format(tried=tried), ""] if settings["strategy"] == "guided" else []
    stored = {key: value for key, value in settings.items() if key in SweepSettings.model_fields}
    candidates = planned_configs(job.spec, SweepSettings.model_validate(stored))
    race = describe_race(
        candidates=candidates,
        alpha=settings["alpha"],
        min_effect=settings.get("min_effect", 0.0),
        items_per_round=settings["items_per_round"],
        max_runs=settings.get("max_runs"),
    )
    return [*guided, race]


def _decision_row(row: Any) -> list[Any]:
    decision = json.loads(row["decision"])
    against = "-" if row["against"] is None else _config(json.loads(row["against"]))
    return [
        _config(json.loads(row["params"])),
        decision["state"],
        decision["at_n"],
        against,
        f"{decision['p']:.4g}",
    ]


def _config(config: dict[str, Any]) -> str:
    return line(", ".join(f"{k}={value(v)}" for k, v in config.items()))
