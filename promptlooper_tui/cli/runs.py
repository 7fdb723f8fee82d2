"""`promptlooper runs list|show` and `score`: the runs of sweeps, and a person's rating of one."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from ..domain.errors import BadInput
from .arguments import Parsers, fraction, positive
from .exit_codes import EXIT_OK

if TYPE_CHECKING:
    from ..workbench import Workbench


def add_runs_parser(parsers: Parsers) -> None:
    actions = parsers.add_group("runs", help="list and show runs")
    p = actions.add_parser(
        "list", parents=[parsers.home, parsers.json], help="runs, filtered and paged"
    )
    # Positional, as for `leaderboard` and `export`; --experiment kept for scripts.
    p.add_argument("experiment_ref", nargs="?", metavar="EXPERIMENT", help="experiment id or name")
    p.add_argument("--experiment", metavar="ID", help=argparse.SUPPRESS)
    p.add_argument("--sweep", metavar="SWEEP_ID")
    p.add_argument("--status", choices=["completed", "failed"])
    p.add_argument("--min-score", type=fraction)
    p.add_argument("--max-score", type=fraction)
    p.add_argument("--limit", type=positive, default=50, help="runs shown (default 50)")
    p.add_argument(
        "--after",
        metavar="CURSOR",
        help="the page after the one that printed this cursor (same filters); as fast at any depth",
    )
    p.add_argument(
        "--offset", type=int, default=0, help="runs skipped, newest first (after --after if given)"
    )
    p.set_defaults(handler=cmd_runs_list)
    p = actions.add_parser(
        "show", parents=[parsers.home, parsers.json], help="one run: stages, outputs, scores"
    )
    p.add_argument("run", metavar="RUN_ID")
    p.set_defaults(handler=cmd_runs_show)


def add_score_parser(parsers: Parsers) -> None:
    p = parsers.commands.add_parser(
        "score",
        parents=[parsers.home, parsers.json],
        help="rate a run (0..1); a new rating replaces your earlier one of the run",
    )
    p.add_argument("run", metavar="RUN_ID")
    p.add_argument("value", type=fraction, metavar="VALUE", help="0 = worst, 1 = best")
    p.add_argument(
        "--scorer",
        default="human",
        help="your name as a rater (default human); not one of the experiment's scorers",
    )
    p.add_argument("--note")
    p.set_defaults(handler=cmd_score)


async def cmd_runs_list(args: argparse.Namespace, wb: Workbench) -> int:
    from ..domain.config_text import compact_config
    from .output import print_json, score_text, table

    if args.experiment_ref and args.experiment and args.experiment_ref != args.experiment:
        raise BadInput(
            f"two experiments given ({args.experiment_ref!r} and --experiment "
            f"{args.experiment!r}); name one"
        )
    page = await wb.list_runs(
        experiment=args.experiment_ref or args.experiment,
        sweep=args.sweep,
        status=args.status,
        min_score=args.min_score,
        max_score=args.max_score,
        limit=args.limit,
        offset=args.offset,
        after=args.after,
    )
    if args.json:
        print_json(page)
        return EXIT_OK
    shown = len(page.items)
    if not shown:
        if args.after:
            where = " past the cursor"
        else:
            where = f" past the first {args.offset}" if args.offset and page.total else ""
        sys.stdout.write(f"no runs{where} ({page.total} match)\n")
        return EXIT_OK
    table(
        ["run", "config", "item", "rep", "status", "score", "tokens", "ms", "cached"],
        [
            [
                r.id,
                compact_config(r.config),
                r.item_index,
                r.repeat,
                r.status,
                score_text(r.score),
                r.tokens_in + r.tokens_out,
                round(r.latency_ms),
                f"{r.cached_calls}/{r.calls}",
            ]
            for r in page.items
        ],
        trim=1,
        right=[5],
    )
    if args.after:
        shown_runs = f"{shown} runs past the cursor ({page.total} match)"
    else:
        shown_runs = f"runs {args.offset + 1}-{args.offset + shown} of {page.total}"
    # The cursor on a line of its own, to copy whole.
    more = f"; for the next {args.limit} add\n--after {page.next}" if page.next else ""
    sys.stdout.write(f"{shown_runs}, newest first{more}\n")
    return EXIT_OK


async def cmd_runs_show(args: argparse.Namespace, wb: Workbench) -> int:
    import json

    from ..domain.config_text import format_config
    from .output import print_json

    run = await wb.get_run(args.run)
    if args.json:
        print_json(run)
        return EXIT_OK
    out = sys.stdout
    truncated = ", truncated: an answer hit max_tokens" if run.truncated else ""
    item = json.dumps(run.item, ensure_ascii=False, indent=2)
    out.write(
        f"run {run.id} ({run.status}{truncated}) in sweep {run.sweep_id}\n"
        f"config: {format_config(run.config)}\n"
        f"item {run.item_index} (0-based row of the dataset), repeat {run.repeat}:\n{item}\n"
        f"score: {run.score}  tokens: {run.tokens_in} in / {run.tokens_out} out  "
        f"latency: {run.latency_ms:.0f} ms  cached calls: {run.cached_calls}/{run.calls}\n"
    )
    if run.error:
        out.write(f"error: {run.error}\n")
    for stage in run.stages:
        cached = " (cached)" if stage.cached else ""
        finish = f" · finish: {stage.finish_reason}" if stage.finish_reason else ""
        out.write(f"\n== stage {stage.index + 1}: {stage.name}{cached}{finish}\n")
        for message in stage.messages:
            out.write(f"[{message['role']}] {message['content']}\n")
        out.write(f"--> {stage.output if stage.output is not None else '(no output)'}\n")
        if stage.finish_reason == "length":
            out.write("truncated: the answer stopped at max_tokens; the output is cut short\n")
        for warning in stage.warnings:
            out.write(f"endpoint warning: {warning}\n")
        if stage.error:
            out.write(f"error: {stage.error}\n")
    out.write("\nscores:\n")
    for score in run.scores:
        value = "-" if score.value is None else f"{score.value:.3f}"
        extra = f"  error: {score.error}" if score.error else ""
        extra += f"  note: {score.note}" if score.note else ""
        out.write(f"  {score.scorer} ({score.kind}, weight {score.weight:g}): {value}{extra}\n")
    return EXIT_OK


async def cmd_score(args: argparse.Namespace, wb: Workbench) -> int:
    from .output import print_json, score_text

    run = await wb.add_score(args.run, args.value, scorer=args.scorer, note=args.note)
    if args.json:
        print_json(run)
        return EXIT_OK
    replaced = [s for s in run.superseded_scores if s.scorer == args.scorer]
    earlier = f", replacing {score_text(replaced[-1].value)}" if replaced else ""
    sys.stdout.write(
        f"scored {run.id}: {score_text(args.value)} ({args.scorer}{earlier}); "
        f"run score {score_text(run.score)}\n"
    )
    return EXIT_OK
