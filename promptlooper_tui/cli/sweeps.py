"""`promptlooper run`, `resume` and `sweeps list|show|pause|resume|stop`: sweeps run headless
with progress on stderr, the sweeps stored, and control of a sweep whichever process runs it."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from typing import TYPE_CHECKING

from ..command_line import command_line
from ..domain.errors import Conflict, PromptLooperError
from .arguments import Parsers, holdout_share, positive, score_difference
from .exit_codes import EXIT_FAILED, EXIT_OK
from .experiments import load_experiment_file

if TYPE_CHECKING:
    from ..domain.records import SweepRecord
    from ..workbench import Workbench


def add_run_parser(parsers: Parsers) -> None:
    p = parsers.commands.add_parser(
        "run", parents=[parsers.home, parsers.json], help="run a sweep headless"
    )
    p.add_argument("file", metavar="FILE")
    p.add_argument("--strategy", choices=["grid", "random", "guided", "racing", "evolve"])
    p.add_argument("--samples", type=positive, help="configs to try (random, guided, racing)")
    p.add_argument("--repeats", type=positive, help="runs per config per item")
    p.add_argument("--concurrency", type=positive, help="most LLM calls at once")
    p.add_argument("--max-tokens", type=positive, help="token budget for the sweep")
    p.add_argument(
        "--min-effect",
        type=score_difference,
        help="racing, guided: a score difference too small to matter",
    )
    p.add_argument(
        "--max-runs", type=positive, help="racing, guided, evolve: the most runs the sweep makes"
    )
    p.add_argument("--generations", type=positive, help="evolve: rounds of proposals")
    p.add_argument("--proposals", type=positive, help="evolve: new templates per generation")
    p.add_argument(
        "--holdout", type=holdout_share, help="evolve: share of items the proposer never sees"
    )
    p.add_argument("--proposer", metavar="MODEL", help="evolve: the model writing the templates")
    p.add_argument("--seed", type=int)
    p.add_argument("--no-cache", action="store_true", help="make every call afresh")
    p.add_argument("--dry-run", action="store_true", help="show the plan; spend nothing")
    p.add_argument("--top", type=positive, default=10, help="leaderboard rows (default 10)")
    p.set_defaults(handler=cmd_run)


def add_resume_parser(parsers: Parsers) -> None:
    p = parsers.commands.add_parser(
        "resume", parents=[parsers.home, parsers.json], help="finish an interrupted sweep"
    )
    p.add_argument("sweep", metavar="SWEEP_ID")
    p.add_argument("--retry-failed", action="store_true", help="run failed runs again")
    p.add_argument("--max-tokens", type=positive, help="a new token budget for the sweep")
    p.add_argument("--top", type=positive, default=10)
    # `promptlooper mcp` hands its sweeps over with this when its client disconnects.
    p.add_argument("--after-pid", type=positive, help=argparse.SUPPRESS)
    p.set_defaults(handler=cmd_resume)


def add_sweeps_parser(parsers: Parsers) -> None:
    actions = parsers.add_group("sweeps", help="list, show, pause, resume and stop sweeps")
    p = actions.add_parser(
        "list",
        parents=[parsers.home, parsers.json],
        help="sweeps with status; interrupted ones are resumable",
    )
    p.add_argument("--experiment", metavar="ID")
    p.set_defaults(handler=cmd_sweeps_list)
    p = actions.add_parser(
        "show", parents=[parsers.home, parsers.json], help="a sweep's summary and leaderboard"
    )
    p.add_argument("sweep", metavar="SWEEP_ID")
    p.add_argument("--top", type=positive, default=10)
    p.set_defaults(handler=cmd_sweeps_show)
    for action, handler, text in (
        (
            "pause",
            cmd_sweeps_pause,
            "pause a sweep, whichever process runs it (runs in flight finish)",
        ),
        (
            "resume",
            cmd_sweeps_resume,
            "resume a paused sweep in the process that runs it; one that no process runs "
            "(paused, interrupted, stopped) runs here in the foreground, as `resume` does",
        ),
        (
            "stop",
            cmd_sweeps_stop,
            "stop a sweep, whichever process runs it (runs in flight are cancelled); it stays "
            "resumable",
        ),
    ):
        p = actions.add_parser(
            action, parents=[parsers.home, parsers.json], help=text, description=text
        )
        p.add_argument("sweep", metavar="SWEEP_ID")
        p.add_argument("--top", type=positive, default=10, help="leaderboard rows with --json")
        p.set_defaults(handler=handler)


async def cmd_run(args: argparse.Namespace, wb: Workbench) -> int:
    from ..workbench import SweepOverrides
    from .output import print_json, print_plan

    loaded = load_experiment_file(args.file)
    overrides = SweepOverrides(
        strategy=args.strategy,
        samples=args.samples,
        repeats=args.repeats,
        concurrency=args.concurrency,
        max_tokens=args.max_tokens,
        min_effect=args.min_effect,
        max_runs=args.max_runs,
        seed=args.seed,
        generations=args.generations,
        proposals=args.proposals,
        holdout=args.holdout,
        proposer_model=args.proposer,
        no_cache=args.no_cache,
    )
    if args.dry_run:  # spends nothing and stores nothing
        plan = await wb.plan_spec(loaded.spec, overrides)
        print_json(plan) if args.json else print_plan(plan)
        return EXIT_OK
    imported = await wb.import_experiment(loaded)
    sweep_id = await wb.create_sweep(imported.id, overrides)
    if not args.json:
        sys.stderr.write(
            f"Sweep {sweep_id}: {loaded.spec.name} v{imported.version}"
            f"{' (new version)' if imported.created and imported.version > 1 else ''}\n"
        )
    return await _follow_sweep(args, wb, sweep_id)


async def cmd_resume(args: argparse.Namespace, wb: Workbench) -> int:
    sweep_id = await wb.resolve_sweep(args.sweep)
    if args.after_pid is not None:
        await _wait_for_exit(args.after_pid)
    return await _follow_sweep(
        args, wb, sweep_id, retry_failed=args.retry_failed, max_tokens=args.max_tokens
    )


async def _follow_sweep(
    args: argparse.Namespace,
    wb: Workbench,
    sweep_id: str,
    *,
    retry_failed: bool = False,
    max_tokens: int | None = None,
) -> int:
    """Run a sweep with progress on stderr; Ctrl-C stops it cleanly, leaving it resumable."""
    import asyncio

    from ..signals import on_stop_signals
    from .output import print_json, print_summary
    from .progress import SweepProgress, cancel_quietly

    progress = SweepProgress(wb.bus, sweep_id)
    follower = asyncio.create_task(progress.follow())
    task = await wb.start_sweep(sweep_id, retry_failed=retry_failed, max_tokens=max_tokens)
    interrupted = False

    def on_interrupt() -> None:
        nonlocal interrupted
        if interrupted:  # a second Ctrl-C: stop waiting for anything
            task.cancel()
            return
        interrupted = True
        sys.stderr.write("\nStopping: cancelling runs in flight (Ctrl-C again to force)...\n")
        runner = wb.runner(sweep_id)
        if runner is not None:
            runner.stop()

    cause: PromptLooperError | None = None
    try:
        with on_stop_signals(on_interrupt), contextlib.suppress(asyncio.CancelledError):
            await task
    except PromptLooperError as exc:
        # The sweep could not even record how it ended (a full disk): its finished runs are
        # saved, and it reads as interrupted, so it ends like any other stop.
        cause = exc
    finally:
        progress.finish()
        await cancel_quietly(follower)
    summary = await wb.sweep_summary(sweep_id, top=args.top)
    if args.json:
        print_json(summary)
    else:
        print_summary(summary)
    resume = command_line(wb.settings, "resume", sweep_id)
    if cause is not None:
        sys.stderr.write(
            f"Sweep {sweep_id} {summary.status}: {cause}\n"
            f"Finished runs are saved. Fix the cause, then resume with: {resume}\n"
        )
        return EXIT_FAILED
    if summary.status == "stopped":
        sys.stderr.write(
            f"Sweep {sweep_id} stopped; finished runs are saved. Resume with: {resume}\n"
        )
        return EXIT_FAILED
    if summary.status == "failed":
        record = await wb.get_sweep(sweep_id)
        sys.stderr.write(
            f"Sweep {sweep_id} failed: {record.error}\n"
            f"Fix the cause, then: {resume} --retry-failed\n"
        )
        return EXIT_FAILED
    if summary.status == "budget_exhausted":
        sys.stderr.write(
            f"Token budget reached; runs in flight finished. Raise it and continue with: "
            f"{resume} --max-tokens N\n"
        )
    if summary.runs.completed == 0 and summary.runs.failed > 0:
        return EXIT_FAILED
    return EXIT_OK


async def _wait_for_exit(pid: int) -> None:
    """Return once process `pid` has exited: `promptlooper mcp` hands its sweeps over to
    `resume --after-pid` when its client disconnects, and still owns them until it is gone."""
    import asyncio

    from ..engine.process_identity import process_alive

    try:
        handle = os.pidfd_open(pid)
    except ProcessLookupError:
        return
    except (AttributeError, OSError):  # no pidfd (not Linux): look now and then
        while True:
            if not process_alive(pid):
                return
            await asyncio.sleep(0.1)
    loop = asyncio.get_running_loop()
    exited = loop.create_future()
    loop.add_reader(handle, lambda: exited.done() or exited.set_result(None))
    try:
        await exited
    finally:
        loop.remove_reader(handle)
        os.close(handle)


async def cmd_sweeps_list(args: argparse.Namespace, wb: Workbench) -> int:
    from .output import cost_text, print_json, table

    sweeps = await wb.list_sweeps(args.experiment)
    if args.json:
        print_json(sweeps)
        return EXIT_OK
    table(
        [
            "id",
            "experiment",
            "v",
            "strategy",
            "status",
            "done",
            "failed",
            "total",
            "tokens",
            "cost",
            "created",
        ],
        [
            [
                s.id,
                s.experiment,
                s.experiment_version,
                s.strategy,
                s.status + (" (resumable)" if s.resumable else ""),
                s.runs_completed,
                s.runs_failed,
                f"~{s.runs_total}" if s.total_is_estimate else s.runs_total,
                s.tokens,
                cost_text(s.cost),
                s.created_at[:19],
            ]
            for s in sweeps
        ],
        right=(7, 9),
    )
    if any(s.total_is_estimate for s in sweeps):
        sys.stdout.write("~: the strategy's current plan, until the sweep completes\n")
    return EXIT_OK


async def cmd_sweeps_show(args: argparse.Namespace, wb: Workbench) -> int:
    from .output import print_json, print_summary

    summary = await wb.sweep_summary(args.sweep, top=args.top)
    print_json(summary) if args.json else print_summary(summary)
    return EXIT_OK


async def cmd_sweeps_pause(args: argparse.Namespace, wb: Workbench) -> int:
    sweep = await _live_sweep(wb, args.sweep, "pause")
    if sweep.status == "paused":
        return await _confirm(args, wb, sweep, "is already paused")
    sweep = await wb.pause_sweep(sweep.id)
    resume = command_line(wb.settings, "sweeps", "resume", sweep.id)
    return await _confirm(
        args, wb, sweep, f"paused (runs in flight finish); resume it with: {resume}"
    )


async def cmd_sweeps_resume(args: argparse.Namespace, wb: Workbench) -> int:
    sweep = await wb.get_sweep(args.sweep)
    if sweep.status == "running":
        return await _confirm(args, wb, sweep, "is already running")
    if not sweep.resumable:
        raise Conflict(
            f"sweep {sweep.id} ({sweep.experiment}) is {sweep.status}: nothing to resume"
        )
    if sweep.status == "paused":
        resumed = await _resume_where_it_runs(wb, sweep.id)
        if resumed is not None:
            return await _confirm(args, wb, resumed, "resumed in the process that runs it")
    # As the app's resume runs such a sweep in the app, and as `resume` does.
    sys.stderr.write(
        f"Sweep {sweep.id} ({sweep.experiment}): no process is running it; running it here "
        "(Ctrl-C stops it)\n"
    )
    return await _follow_sweep(args, wb, sweep.id)


async def _resume_where_it_runs(wb: Workbench, sweep_id: str) -> SweepRecord | None:
    """The paused sweep, resumed by the process that runs it; None when no process runs it
    (its process left while it was paused), and it is for this one to run."""
    try:
        return await wb.resume_paused_sweep(sweep_id)
    except Conflict:
        return None


async def cmd_sweeps_stop(args: argparse.Namespace, wb: Workbench) -> int:
    sweep = await wb.stop_sweep((await _live_sweep(wb, args.sweep, "stop")).id)
    if sweep.status != "stopped":
        # Its process did not answer in time, or the sweep ended otherwise meanwhile.
        sys.stderr.write(f"Sweep {sweep.id} ({sweep.experiment}) is {sweep.status}, not stopped\n")
        return EXIT_FAILED
    resume = command_line(wb.settings, "resume", sweep.id)
    return await _confirm(
        args, wb, sweep, f"stopped; finished runs are kept. Resume with: {resume}"
    )


async def _live_sweep(wb: Workbench, ref: str, action: str) -> SweepRecord:
    """The sweep `ref` names, running or paused in some process; Conflict otherwise."""
    sweep = await wb.get_sweep(ref)
    if sweep.status not in ("running", "paused"):
        raise Conflict(
            f"sweep {sweep.id} ({sweep.experiment}) is {sweep.status}, not running: nothing "
            f"to {action}"
        )
    return sweep


async def _confirm(args: argparse.Namespace, wb: Workbench, sweep: SweepRecord, what: str) -> int:
    """One line naming the sweep and what it is now (its summary with --json)."""
    from .output import print_json

    if args.json:
        print_json(await wb.sweep_summary(sweep.id, top=args.top))
    else:
        sys.stdout.write(f"Sweep {sweep.id} ({sweep.experiment}) {what}\n")
    return EXIT_OK
