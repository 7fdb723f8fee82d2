"""`--format report`: a Markdown report of one sweep, with the leaderboard of what the export
ranks (the experiment's latest version over all its sweeps, unless one sweep was asked for).

Every figure comes from an aggregate the store computes (counts, sums, min/avg/max, histogram
bins, grouped errors), so a sweep of any size is reported without loading its runs.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any, TextIO

from ..domain.experiment import CategoricalParameter, RangeParameter, parse_parameter
from ..domain.records import LeaderboardEntry
from ..store import runs as stored_runs
from ..store import scores as stored_scores
from ..store import sweeps as stored_sweeps
from ..store.scores import RUN_SCORE
from .markdown import line, no_html, table, value
from .report_decisions import how_the_winner_was_chosen
from .report_evolution import held_out_notes, how_the_prompts_evolved
from .source import ExportJob, utc_now

#: Histogram bins over [0, 1] (a score of exactly 1 goes in the last) and the longest bar.
BINS = 10
BAR_WIDTH = 30
#: Distinct failure messages listed, and run ids shown for each.
FAILURE_GROUPS = 20
FAILURE_EXAMPLES = 3


async def write_report(job: ExportJob, out: TextIO) -> None:
    """Write the report: overview, config space, top-N leaderboard, how the winner was
    chosen (and for an evolve sweep how its prompts evolved), score distributions, tokens and
    cost, timing, and failures grouped by message."""
    totals = await stored_runs.report_totals(job.db, job.sweep.id)
    assert totals is not None
    sections = [
        _overview(job),
        await _config_space(job),
        await _leaderboard(job),
        await how_the_winner_was_chosen(job, await _settings(job), totals["runs"]),
        *([await how_the_prompts_evolved(job)] if job.evolution is not None else []),
        await _distributions(job),
        await _usage(job, totals),
        _timing(job, totals),
        await _failures(job, totals["failed"]),
    ]
    out.write("\n\n".join(sections) + "\n")


# -- sections ----------------------------------------------------------------------------------


def _overview(job: ExportJob) -> str:
    sweep, spec = job.sweep, job.spec
    name = line(sweep.experiment)
    lines = [f"# Sweep report: {name}", ""]
    if spec.description:
        lines += [no_html(spec.description), ""]
    lines += [
        f"- Experiment: {name}, version {sweep.experiment_version}",
        f"- Sweep: {sweep.id}, status **{sweep.status}**",
        f"- Started: {sweep.created_at}; finished: {sweep.finished_at or '-'}",
        f"- Exported: {utc_now()}",
    ]
    return "\n".join(lines)


async def _settings(job: ExportJob) -> dict[str, Any]:
    stored = await stored_sweeps.sweep_settings_json(job.db, job.sweep.id)
    assert stored is not None
    settings: dict[str, Any] = json.loads(stored)
    return settings


async def _config_space(job: ExportJob) -> str:
    settings = await _settings(job)
    counts = await stored_sweeps.config_counts(job.db, job.sweep.id)
    assert counts is not None
    samples = f", {settings['samples']} samples" if settings.get("samples") else ""
    budget = settings.get("max_tokens")
    lines = [
        "## Config space",
        "",
        f"Strategy **{settings['strategy']}**{samples}, {settings['repeats']} repeat(s) per "
        f"config and item, seed {settings['seed']}, token budget "
        f"{_number(budget) if budget else 'none'}; {len(job.spec.items)} dataset items.",
        f"Configs tried: **{counts['tried']}**, dropped by racing: **{counts['dropped']}**.",
        "",
    ]
    lines += table(
        ["parameter", "kind", "values"],
        [_parameter_row(name, raw) for name, raw in job.spec.parameters.items()],
    )
    return "\n".join(lines)


async def _leaderboard(job: ExportJob) -> str:
    board = await job.ranking(top=job.top)
    entries = board.entries
    shown = f"top {len(entries)} of {board.configs} configs" if entries else "no configs"
    lines = [f"## Leaderboard ({shown})", "", f"Ranked: {line(board.ranked.describe())}."]
    if board.scorers:
        lines.append(f"Scores include: {line(', '.join(board.scorers))}.")
    for name, failures in board.scorer_failures.items():
        lines.append(f"{line(name)} failed on {failures.failed}/{failures.runs} runs.")
    if board.unpriced_models:
        lines.append(f"No price for: {line(', '.join(board.unpriced_models))} (cost unpriced).")
    lines.append("")
    if not entries:
        return "\n".join([*lines, "No scored runs yet."])
    headers = ["rank", "config", "score", "95% CI", "n", "tied with leader", "tokens", "cost"]
    rows = [_leaderboard_row(entry) for entry in entries]
    # evolve: what the proposer saw beside what the winner is judged on.
    split = any(entry.holdout_n is not None for entry in entries)
    if split:
        headers[3:3] = ["train", "held-out"]
        for row, entry in zip(rows, entries, strict=True):
            row[3:3] = [_score(entry.train_score), _score(entry.holdout_score)]
    lines += table([*headers, "p50 latency (ms)"], rows)
    return "\n".join([*lines, "", *held_out_notes(entries[0])] if split else lines)


async def _distributions(job: ExportJob) -> str:
    distributions = await stored_scores.score_distributions(job.db, job.sweep.id)
    stats = {row["name"]: row for row in distributions}
    bins: dict[str, list[int]] = {name: [0] * BINS for name in stats}
    for row in await stored_scores.score_histograms(job.db, job.sweep.id, BINS):
        bins[row["name"]][row["bin"]] = row["n"]
    lines = ["## Score distributions", ""]
    if not stats:
        return "\n".join([*lines, "No scores yet."])
    names = _scorer_order(job, stats)
    lines += table(
        ["scorer", "n", "min", "mean", "max", "errors"],
        [
            [name, s["n"], _score(s["lo"]), _score(s["mean"]), _score(s["hi"]), s["errors"]]
            for name, s in ((name, stats[name]) for name in names)
        ],
    )
    for name in names:
        lines += ["", f"### {line(name)}", "", "```", *_histogram(bins[name]), "```"]
    return "\n".join(lines)


async def _usage(job: ExportJob, totals: Any) -> str:
    paid = await stored_sweeps.sweep_totals(job.db, job.sweep.id)
    assert paid is not None
    calls, cached = totals["calls"], totals["cached_calls"]
    share = f" ({cached / calls:.0%})" if calls else ""
    unpriced = job.sweep.cost is None
    return "\n".join(
        [
            "## Runs, tokens and cost",
            "",
            f"- Runs: {_number(totals['runs'])} ({_number(totals['completed'])} completed, "
            f"{_number(totals['failed'])} failed)",
            f"- LLM calls: {_number(calls)}, {_number(cached)} from the cache{share}",
            f"- Spent by this sweep (cache misses): {_number(paid['tokens_in'])} input + "
            f"{_number(paid['tokens_out'])} output tokens, cost "
            f"{'unpriced' if unpriced else format(paid['cost'], '.6f')}",
            f"- At list price (as if nothing were cached): {_number(totals['tokens_in'])} input "
            f"+ {_number(totals['tokens_out'])} output tokens, cost "
            f"{'unpriced' if unpriced else format(totals['cost'], '.6f')}",
        ]
    )


def _timing(job: ExportJob, totals: Any) -> str:
    first, last = totals["first_finished"], totals["last_finished"]
    lines = ["## Timing", ""]
    if first is None:
        return "\n".join([*lines, "No run has finished yet."])
    duration = _seconds_between(job.sweep.created_at, last)
    return "\n".join(
        [
            *lines,
            f"- Sweep started: {job.sweep.created_at}",
            f"- First run finished: {first}",
            f"- Last run finished: {last}",
            f"- Duration (start to last finished run): {_duration(duration)}",
        ]
    )


async def _failures(job: ExportJob, failed: int) -> str:
    lines = ["## Failures", ""]
    if not failed:
        return "\n".join([*lines, "No failed runs."])
    groups = await stored_runs.failure_groups(job.db, job.sweep.id, FAILURE_GROUPS + 1)
    shown = groups[:FAILURE_GROUPS]
    examples = await _failure_examples(job, [row["error"] for row in shown])
    lines.append(f"{_number(failed)} failed runs, grouped by error message:")
    lines.append("")
    lines += table(
        ["runs", "error", "example runs"],
        [[row["n"], row["error"] or "(no message)", examples[row["error"]]] for row in shown],
    )
    if len(groups) > FAILURE_GROUPS:
        lines += ["", f"More distinct messages than the {FAILURE_GROUPS} most frequent shown."]
    return "\n".join(lines)


async def _failure_examples(job: ExportJob, errors: list[str]) -> dict[str, str]:
    """A few run ids per error message (the first ones by id), from one windowed query."""
    if not errors:
        return {}
    rows = await stored_runs.failure_examples(job.db, job.sweep.id, errors, FAILURE_EXAMPLES)
    examples: dict[str, list[str]] = {error: [] for error in errors}
    for row in rows:
        examples[row["error"]].append(row["id"])
    return {error: ", ".join(ids) for error, ids in examples.items()}


# -- formatting --------------------------------------------------------------------------------


def _parameter_row(name: str, raw: Any) -> list[str]:
    parsed = parse_parameter(raw)
    if isinstance(parsed, RangeParameter):
        grid = ", ".join(value(v) for v in parsed.grid_values())
        return [name, "range", f"{parsed.min} to {parsed.max} (grid: {grid})"]
    if isinstance(parsed, CategoricalParameter) and len(parsed.values) > 1:
        return [name, "swept", ", ".join(value(v) for v in parsed.values)]
    fixed = parsed.values[0] if isinstance(parsed, CategoricalParameter) else parsed
    return [name, "fixed", value(fixed)]


def _leaderboard_row(entry: LeaderboardEntry) -> list[Any]:
    tied = "leader" if entry.rank == 1 else ("yes" if entry.tied_with_leader else "no")
    config = ", ".join(f"{k}={value(v)}" for k, v in entry.config.items())
    return [
        entry.rank,
        config + (" (dropped)" if entry.dropped else ""),
        _score(entry.score),
        f"{_score(entry.ci_low)} to {_score(entry.ci_high)}",
        entry.n,
        tied,
        _number(entry.tokens),
        "unpriced" if entry.cost is None else f"{entry.cost:.6f}",
        "-" if entry.p50_latency_ms is None else f"{entry.p50_latency_ms:.1f}",
    ]


def _scorer_order(job: ExportJob, stats: dict[str, Any]) -> list[str]:
    """The experiment's scorers in its order, then other names, then the run score."""
    declared = [job.spec.scorer_name(i) for i in range(len(job.spec.scorers))]
    others = sorted(set(stats) - set(declared) - {RUN_SCORE})
    return [name for name in [*declared, *others, RUN_SCORE] if name in stats]


def _histogram(counts: Sequence[int]) -> list[str]:
    peak = max(counts) or 1
    width = len(str(peak))
    return [
        f"{i / BINS:.1f}-{(i + 1) / BINS:.1f} | {str(n).rjust(width)} "
        f"{'█' * round(n / peak * BAR_WIDTH)}".rstrip()
        for i, n in enumerate(counts)
    ]


def _score(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def _number(value: int) -> str:
    return f"{value:,}"


def _seconds_between(start: str, end: str) -> float:
    return (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds()


def _duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m {secs:02d}s" if hours else f"{minutes}m {secs:02d}s"
