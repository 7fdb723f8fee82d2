"""How the CLI prints its answers on stdout: JSON documents, aligned tables, and the text of
summaries, leaderboards and plans (sweep progress on stderr is `progress`)."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from typing import Any, TextIO

from pydantic import BaseModel

from ..domain.config_text import compact_config, race_text
from ..domain.records import (
    Leaderboard,
    LeaderboardEntry,
    ScorerFailures,
    SweepPlan,
    SweepSummary,
)


def print_json(value: Any, out: TextIO = sys.stdout) -> None:
    if isinstance(value, BaseModel):
        value = value.model_dump(mode="json")
    elif isinstance(value, list):
        value = [v.model_dump(mode="json") if isinstance(v, BaseModel) else v for v in value]
    out.write(json.dumps(value, indent=2, ensure_ascii=False) + "\n")


#: The widest a CLI table gets when one of its columns may be trimmed.
TABLE_WIDTH = 100


def table(
    headers: Sequence[str],
    rows: Sequence[Sequence[Any]],
    out: TextIO = sys.stdout,
    *,
    trim: int | None = None,
    right: Sequence[int] = (),
    width: int = TABLE_WIDTH,
) -> None:
    """A plain aligned table; numbers (and the columns in `right`) right-aligned. When it is
    wider than `width`, column `trim` is cut (its cells end in '…') until it fits. Prints
    '(none)' for no rows."""
    if not rows:
        out.write("(none)\n")
        return
    cells = [[_cell(v) for v in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(headers)]
    numeric = [i in right or all(_is_number(row[i]) for row in rows) for i in range(len(headers))]
    excess = sum(widths) + 2 * (len(widths) - 1) - width
    if trim is not None and excess > 0:
        widths[trim] = max(len(headers[trim]), widths[trim] - excess)
        for row in cells:
            if len(row[trim]) > widths[trim]:
                row[trim] = row[trim][: widths[trim] - 1] + "…"

    def line(values: Sequence[str]) -> str:
        parts = [
            v.rjust(w) if num else v.ljust(w)
            for v, w, num in zip(values, widths, numeric, strict=True)
        ]
        return "  ".join(parts).rstrip()

    out.write(line(list(headers)) + "\n")
    out.write(line(["-" * w for w in widths]) + "\n")
    for row in cells:
        out.write(line(row) + "\n")


def _cell(value: Any) -> str:
    """One cell: '-' for nothing, floats with 3 decimals (never 0.6900000000000001)."""
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.3f}" if abs(value) < 1e6 else f"{value:.3e}"
    return str(value)


def score_text(value: float | None) -> str:
    """A score as every CLI line shows it: 3 decimals."""
    return "-" if value is None else f"{value:.3f}"


def cost_text(value: float | None) -> str:
    """A cost as every CLI line shows it: 4 decimals in the pricing's currency, or
    'unpriced' when a model has no price (never a false 0)."""
    return "unpriced" if value is None else f"{value:.4f}"


def _is_number(value: Any) -> bool:
    return (isinstance(value, int | float) and not isinstance(value, bool)) or value is None


def print_leaderboard(board: Leaderboard, out: TextIO = sys.stdout) -> None:
    """What was ranked, the table, then what to know about it: a top-N cut, scorers that
    failed, models without a price."""
    out.write(f"Ranked: {board.ranked.describe()}")
    if board.scorers:
        out.write(f"; scores include {', '.join(board.scorers)}")
    out.write("\n\n")
    _leaderboard_table(board.entries, out)
    _leaderboard_notes(
        out,
        shown=len(board.entries),
        configs=board.configs,
        failures=board.scorer_failures,
        unpriced=board.unpriced_models,
        held_out=any(e.holdout_n is not None for e in board.entries),
    )


def _leaderboard_table(entries: list[LeaderboardEntry], out: TextIO) -> None:
    """The ranked configs in 100 columns: the config column is trimmed first. A race's table
    adds where each config stands in it."""
    raced = any(e.decision is not None for e in entries)
    headers = ["#", "config", "score", "95% CI", "n", "tied", "tokens", "cost", "p50 ms"]
    rows = [
        [
            e.rank,
            compact_config(e.config) + (" (dropped)" if e.dropped and not raced else ""),
            score_text(e.score),
            f"{e.ci_low:.3f}-{e.ci_high:.3f}",
            e.n,
            "leader" if e.leader or e.rank == 1 else ("yes" if e.tied_with_leader else "no"),
            e.tokens,
            cost_text(e.cost),
            None if e.p50_latency_ms is None else round(e.p50_latency_ms),
        ]
        for e in entries
    ]
    right = [2, 7]
    if raced:
        headers.insert(6, "race")
        for row, entry in zip(rows, entries, strict=True):
            row.insert(6, race_text(entry.decision))
        right = [2, 8]
    if any(e.holdout_n is not None for e in entries):
        # evolve: what the proposer saw beside what the winner is judged on, for the score
        # over both (which mixes them).
        headers[2:3] = ["train", "held-out"]
        for row, entry in zip(rows, entries, strict=True):
            row[2:3] = [_split_text(entry.train_score), _split_text(entry.holdout_score)]
        right = [2, 3, right[1] + 1]
    table(headers, rows, out, trim=1, right=tuple(right))


def _split_text(score: float | None) -> str:
    return "-" if score is None else score_text(score)


def _leaderboard_notes(
    out: TextIO,
    *,
    shown: int,
    configs: int,
    failures: dict[str, ScorerFailures],
    unpriced: list[str],
    held_out: bool = False,
) -> None:
    if configs > shown:
        out.write(f"top {shown} of {configs} configs; --top N for more\n")
    if shown > 1:
        out.write("tied: not distinguishable from the leader (paired test, 95%)\n")
    if held_out:
        out.write(
            "train: mean on the items the proposer saw; held-out: on those it never saw, "
            "where the winner is chosen\n"
        )
    for name, failed in failures.items():
        out.write(f"{name} failed on {failed.failed}/{failed.runs} runs (not in the scores)\n")
    if unpriced:
        out.write(f"no price for: {', '.join(unpriced)} (cost unpriced)\n")


def print_summary(summary: SweepSummary, out: TextIO = sys.stdout) -> None:
    runs, calls, this_run = summary.runs, summary.calls, summary.calls_this_run
    estimate = ", planned so far" if runs.total_is_estimate else ""
    resumed = (
        f" ({this_run.requested} in this run)"
        if this_run is not None and this_run.requested != calls.requested
        else ""
    )
    out.write(
        f"Sweep {summary.sweep_id} of {summary.experiment} v{summary.experiment_version}: "
        f"{summary.status}\n"
        f"  runs: {runs.completed} completed, {runs.failed} failed, {runs.cached} fully cached "
        f"(of {runs.total}{estimate})\n"
        f"  calls: {calls.requested} requested{resumed}, {calls.cache_hits} from cache\n"
        f"  tokens: {summary.tokens.input} in, {summary.tokens.output} out; "
        f"cost {cost_text(summary.cost)}\n"
    )
    if summary.most_common_error:
        out.write(f"  most common error: {summary.most_common_error}\n")
    out.write("\n")
    _leaderboard_table(summary.leaderboard, out)
    _leaderboard_notes(
        out,
        shown=len(summary.leaderboard),
        configs=summary.leaderboard_configs,
        failures=summary.scorer_failures,
        unpriced=summary.unpriced_models,
    )


def _expected(plan: SweepPlan) -> str:
    if plan.proposer_calls:
        return "no forecast: what runs depends on what the proposer writes"
    if plan.expected_runs is None:
        return "no forecast (too large to simulate); at most the worst case below"
    return (
        f"{plan.expected_runs} runs, {plan.expected_calls} LLM calls (a forecast for configs "
        "as far apart as in a typical space; near-equal ones cost up to the worst case)"
    )


def print_plan(plan: SweepPlan, out: TextIO = sys.stdout) -> None:
    if plan.upper_bound:
        out.write(f"expected:         {_expected(plan)}\n")
        out.write("worst case (the strategy stops early or proposes as it goes):\n")
    out.write(
        f"configs:          {plan.configs}\n"
        f"runs:             {plan.runs}\n"
        f"LLM calls:        {plan.calls}\n"
        f"already cached:   {plan.cached_calls}\n"
        f"estimated tokens: {plan.estimated_tokens} (upper bound: prompt + max_tokens per call)\n"
        f"estimated cost:   {plan.estimated_cost:.6f}\n"
    )
    if plan.proposer_calls:
        out.write(
            f"proposer calls:   {plan.proposer_calls} (one a generation; ~{plan.proposer_tokens} "
            "tokens; in the calls and tokens above)\n"
        )
