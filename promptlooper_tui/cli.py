"""The `promptlooper` command: parse, call the Workbench, print. Exit codes are an API:
0 ok; 1 the operation ran but failed; 2 bad input (never a traceback)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import sys
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from . import __version__
from .command_line import command_line
from .domain.errors import BadInput, EndpointError, PromptLooperError, StorageError
from .settings import Settings
from .signals import on_stop_signals

if TYPE_CHECKING:
    from .engine.loader import LoadedExperiment
    from .service import Workbench
    from .tui.app import PromptLooperApp

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT = 0, 1, 2

Handler = Callable[[argparse.Namespace, "Workbench"], Awaitable[int]]


# -- commands ----------------------------------------------------------------------------------


def cmd_validate(args: argparse.Namespace) -> int:
    from .cli_output import print_json
    from .domain.errors import ValidationError

    results: list[dict[str, object]] = []
    issues: list[dict[str, object]] = []
    for path in args.files:
        try:
            spec = _load_experiment_file(path).spec
        except ValidationError as exc:
            found = [issue.as_dict() for issue in exc.issues]
            issues += found
            results.append({"file": path, "ok": False, "issues": found})
            if not args.json:
                count = len(exc.issues)
                sys.stderr.write(f"{path}: {_plural(count, 'problem')}\n{exc}\n")
            continue
        swept = list(spec.parameter_space())
        results.append(
            {
                "file": path,
                "ok": True,
                "name": spec.name,
                "swept_parameters": swept,
                "stages": len(spec.pipeline),
                "items": len(spec.items),
                "scorers": len(spec.scorers),
                "issues": [],
            }
        )
        if not args.json:
            sys.stdout.write(
                f"{path}: ok ({spec.name}: {_plural(len(swept), 'swept parameter')}, "
                f"{_plural(len(spec.pipeline), 'stage')}, {_plural(len(spec.items), 'item')}, "
                f"{_plural(len(spec.scorers), 'scorer')})\n"
            )
    if args.json:
        print_json({"files": results, "ok": not issues, "issues": issues})
    return EXIT_BAD_INPUT if issues else EXIT_OK


def _load_experiment_file(path: str) -> LoadedExperiment:
    """The experiment in the file at `path`; a folder is named as such, not as an OS error."""
    from .domain.errors import Issue, ValidationError
    from .engine.loader import load_experiment_file

    if Path(path).is_dir():
        raise ValidationError(
            [Issue("is a directory, not an experiment file; name the YAML files", source=path)]
        )
    return load_experiment_file(path)


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'s' * (count != 1)}"


async def cmd_run(args: argparse.Namespace, wb: Workbench) -> int:
    from .cli_output import print_json, print_plan
    from .service import SweepOverrides

    loaded = _load_experiment_file(args.file)
    overrides = SweepOverrides(
        strategy=args.strategy,
        samples=args.samples,
        repeats=args.repeats,
        concurrency=args.concurrency,
        max_tokens=args.max_tokens,
        seed=args.seed,
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
    from .cli_output import SweepProgress, cancel_quietly, print_json, print_summary

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
    from .engine.cache import process_alive

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


async def cmd_experiments_list(args: argparse.Namespace, wb: Workbench) -> int:
    from .cli_output import print_json, score_text, table

    experiments = await wb.list_experiments()
    if args.json:
        print_json(experiments)
        return EXIT_OK
    table(
        ["id", "name", "version", "latest sweep", "status", "best", "runs", "tokens"],
        [
            [
                e.id,
                e.name,
                e.version,
                e.latest_sweep_id,
                e.latest_sweep_status,
                score_text(e.best_score),
                e.runs,
                e.tokens,
            ]
            for e in experiments
        ],
        trim=1,
        right=[5],
    )
    return EXIT_OK


async def cmd_experiments_show(args: argparse.Namespace, wb: Workbench) -> int:
    from .cli_output import print_json

    detail = await wb.get_experiment(args.experiment, version=args.version)
    if args.json:
        print_json(detail)
        return EXIT_OK
    sys.stdout.write(
        f"{detail.name} ({detail.id}) version {detail.version} of {detail.versions}\n"
        f"{detail.description}\n"
        f"latest sweep: {detail.latest_sweep_id or '-'} ({detail.latest_sweep_status or '-'}), "
        f"best score {detail.best_score if detail.best_score is not None else '-'}\n\n"
        f"{detail.spec_yaml}"
    )
    return EXIT_OK


async def cmd_sweeps_list(args: argparse.Namespace, wb: Workbench) -> int:
    from .cli_output import cost_text, print_json, table

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
    from .cli_output import print_json, print_summary

    summary = await wb.sweep_summary(args.sweep, top=args.top)
    print_json(summary) if args.json else print_summary(summary)
    return EXIT_OK


async def cmd_runs_list(args: argparse.Namespace, wb: Workbench) -> int:
    from .cli_output import compact_config, print_json, score_text, table

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
    )
    if args.json:
        print_json(page)
        return EXIT_OK
    shown = len(page.items)
    if not shown:
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
    last = args.offset + shown
    more = f"; --offset {last} shows the next {args.limit}" if last < page.total else ""
    sys.stdout.write(f"runs {args.offset + 1}-{last} of {page.total}, newest first{more}\n")
    return EXIT_OK


async def cmd_runs_show(args: argparse.Namespace, wb: Workbench) -> int:
    import json

    from .cli_output import format_config, print_json

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
    from .cli_output import print_json, score_text

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


async def cmd_leaderboard(args: argparse.Namespace, wb: Workbench) -> int:
    from .cli_output import print_json, print_leaderboard

    board = await wb.ranking(args.experiment, top=args.top, sweep=args.sweep)
    print_json(board) if args.json else print_leaderboard(board)
    return EXIT_OK


async def cmd_cache_stats(args: argparse.Namespace, wb: Workbench) -> int:
    from .cli_output import print_json

    stats = await wb.cache_stats()
    if args.json:
        print_json(stats)
    else:
        sys.stdout.write(
            f"entries: {stats.entries}\nbytes:   {stats.bytes}\nhits:    {stats.hits}\n"
            f"misses:  {stats.misses}\nhit rate: {stats.hit_rate:.1%}\n"
        )
    return EXIT_OK


async def cmd_cache_clear(args: argparse.Namespace, wb: Workbench) -> int:
    removed = await wb.cache_clear()
    sys.stdout.write(f"removed {removed} cache entries\n")
    return EXIT_OK


def _secret_from_stdin(flag: str) -> str:
    """The first line of stdin, stripped; BadInput naming `flag` when there is none."""
    secret = sys.stdin.readline().strip()
    if not secret:
        raise BadInput(f"{flag}: nothing on standard input")
    return secret


async def cmd_endpoints_add(args: argparse.Namespace, wb: Workbench) -> int:
    from .cli_output import print_json

    api_key = _secret_from_stdin("--api-key-stdin") if args.api_key_stdin else None
    pricing = dict(_parse_price(p) for p in args.price or [])
    record = await wb.add_endpoint(
        args.name,
        args.base_url,
        api_key=api_key,
        api_key_env=args.api_key_env,
        pricing=pricing,
        max_response_mb=args.max_response_mb,
        deadline_s=args.deadline,
        idle_timeout_s=args.idle_timeout,
        rate_limit_wait_s=args.rate_limit_wait,
    )
    if args.json:
        print_json(record)
    else:
        key = (
            "encrypted key"
            if api_key
            else (f"key from ${args.api_key_env}" if args.api_key_env else "no key")
        )
        sys.stdout.write(f"endpoint {record.name}: {record.base_url} ({key})\n")
    return EXIT_OK


async def cmd_endpoints_list(args: argparse.Namespace, wb: Workbench) -> int:
    from .cli_output import print_json, table

    endpoints = await wb.list_endpoints()
    if args.json:
        print_json(endpoints)
        return EXIT_OK
    table(
        ["name", "base url", "api key", "pricing", "max MiB", "deadline s"],
        [
            [
                e.name,
                e.base_url,
                ("$" + e.api_key_env) if e.api_key_env else ("stored" if e.has_api_key else "-"),
                # As --price takes it: MODEL=IN,OUT per million tokens.
                " ".join(f"{m}={i:g},{o:g}" for m, (i, o) in e.pricing.items()) or "-",
                f"{e.max_response_mb:g}",
                f"{e.deadline_s:g}",
            ]
            for e in endpoints
        ],
        trim=3,
        right=[4, 5],
    )
    return EXIT_OK


async def cmd_endpoints_test(args: argparse.Namespace, wb: Workbench) -> int:
    from .cli_output import print_json

    result = await wb.test_endpoint(args.name)
    if args.json:
        print_json(result)
    elif result.ok:
        sys.stdout.write(
            f"{args.name}: ok in {result.latency_ms:.0f} ms; "
            f"models: {', '.join(result.models) or '(none)'}\n"
        )
    else:
        sys.stderr.write(f"{args.name}: {result.error}\n")
    return EXIT_OK if result.ok else EXIT_FAILED


async def cmd_endpoints_remove(args: argparse.Namespace, wb: Workbench) -> int:
    await wb.remove_endpoint(args.name)
    sys.stdout.write(f"removed endpoint {args.name}\n")
    return EXIT_OK


# -- export handlers --


async def cmd_export(args: argparse.Namespace, wb: Workbench) -> int:
    """Export to -o FILE atomically, or to stdout with nothing else printed there."""
    import os

    from .export import write_atomically

    if args.output in (None, "-"):
        try:
            await wb.export(
                args.experiment, args.format, sys.stdout, sweep=args.sweep, top=args.top
            )
            sys.stdout.flush()
        except BrokenPipeError:
            # The reader stopped early (`| head`): not a failure; keep exit from complaining.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    with write_atomically(args.output) as out:
        await wb.export(args.experiment, args.format, out, sweep=args.sweep, top=args.top)
    sys.stderr.write(f"exported {args.format} to {args.output}\n")
    return EXIT_OK


# -- webhooks handlers --


async def cmd_webhooks_add(args: argparse.Namespace, wb: Workbench) -> int:
    from .cli_output import print_json

    secret = _secret_from_stdin("--secret-stdin") if args.secret_stdin else args.secret
    events = None
    if args.events is not None:
        events = [name.strip() for name in args.events.split(",") if name.strip()]
        if not events:
            raise BadInput("--events: give event types separated by commas, or leave it out")
    record = await wb.add_webhook(args.url, events, secret)
    if args.json:
        print_json(record)
    else:
        sys.stdout.write(
            f"webhook {record.id}: {record.url} ({', '.join(record.events) or 'all events'}; "
            f"{'signed' if record.has_secret else 'unsigned'})\n"
        )
    return EXIT_OK


async def cmd_webhooks_list(args: argparse.Namespace, wb: Workbench) -> int:
    from .cli_output import print_json, table

    webhooks = await wb.list_webhooks()
    if args.json:
        print_json(webhooks)
        return EXIT_OK
    table(
        ["id", "url", "events", "signed", "created"],
        [
            [
                w.id,
                w.url,
                ",".join(w.events) or "all",
                "yes" if w.has_secret else "no",
                w.created_at[:19],
            ]
            for w in webhooks
        ],
        trim=1,
    )
    return EXIT_OK


async def cmd_webhooks_remove(args: argparse.Namespace, wb: Workbench) -> int:
    from .cli_output import print_json

    await wb.remove_webhook(args.id)
    if args.json:
        print_json({"removed": args.id})
    else:
        sys.stdout.write(f"removed webhook {args.id}\n")
    return EXIT_OK


async def cmd_webhooks_deliveries(args: argparse.Namespace, wb: Workbench) -> int:
    from .cli_output import print_json, table

    deliveries = await wb.webhook_deliveries(args.id, limit=args.limit)
    if args.json:
        print_json(deliveries)
        return EXIT_OK
    table(
        ["time", "webhook", "seq", "event", "try", "status", "ms", "ok", "error"],
        [
            [
                d.created_at[:19],
                d.webhook_id,
                d.event_seq,
                d.event_type,
                d.attempt,
                d.status_code,
                round(d.latency_ms),
                "yes" if d.delivered else "no",
                d.error or "",
            ]
            for d in deliveries
        ],
        trim=8,
    )
    if len(deliveries) == args.limit:
        sys.stdout.write(f"the latest {args.limit} deliveries; --limit N shows more\n")
    return EXIT_OK


def cmd_serve(args: argparse.Namespace) -> int:
    from .server.daemon import DaemonOptions, serve

    options = DaemonOptions(
        host=args.host,
        port=args.port,
        mcp_port=args.mcp_port,
        resume_interrupted=args.resume_interrupted,
        log_json=args.log_json,
        data_dir=args.data_dir,
        allowed_key_env=tuple(args.allow_key_env),
        allowed_hosts=tuple(args.allowed_host),
    )
    return serve(Settings.resolve(getattr(args, "home", None)), options)


def cmd_mcp(args: argparse.Namespace) -> int:
    from .server.daemon import serve_mcp_stdio

    return serve_mcp_stdio(
        Settings.resolve(getattr(args, "home", None)),
        data_dir=args.data_dir,
        allowed_key_env=args.allow_key_env,
        log_json=args.log_json,
    )


def _env_names(text: str) -> list[str]:
    """`A,B` -> ["A", "B"]: environment variable names (letters, digits, _; no leading digit)."""
    names = [name.strip() for name in text.split(",") if name.strip()]
    for name in names:
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
            raise argparse.ArgumentTypeError(f"not an environment variable name: {name!r}")
    return names


def _remote_caller_flags(p: argparse.ArgumentParser) -> None:
    """The trust flags of the commands that serve remote callers (DESIGN §9)."""
    p.add_argument(
        "--data-dir",
        type=Path,
        metavar="DIR",
        help="the only folder whose dataset files remote experiments may read "
        "(default: <home>/data, created 0700)",
    )
    p.add_argument(
        "--allow-key-env",
        type=_env_names,
        action="extend",
        default=[],
        metavar="NAME,...",
        help="environment variables remote experiments may name as api_key_env (default: none)",
    )


def cmd_simulate_endpoint(args: argparse.Namespace) -> int:
    from .simulated.options import SimulatorOptions
    from .simulated.server import run_simulated_endpoint

    for name in ("fail_rate", "rate_limit_rate", "cut_rate", "malformed_rate"):
        if not 0.0 <= getattr(args, name) <= 1.0:
            raise BadInput(f"--{name.replace('_', '-')} must be between 0 and 1")
    options = SimulatorOptions(
        latency_ms=args.latency_ms,
        fail_rate=args.fail_rate,
        rate_limit_rate=args.rate_limit_rate,
        retry_after=args.retry_after,
        cut_rate=args.cut_rate,
        malformed_rate=args.malformed_rate,
        api_key=args.api_key,
        seed=args.seed,
    )
    run_simulated_endpoint(args.host, args.port, options)
    return EXIT_OK


def cmd_tui(args: argparse.Namespace) -> int:
    """The full-screen app (also what `promptlooper` alone opens)."""
    return _run_app(args, demo=False)


def cmd_demo(args: argparse.Namespace) -> int:
    """The demo in a temporary home, removed when the app ends, so its sweeps never pile up in
    the user's; with `--home DIR`, in DIR, where what it made is kept."""
    if getattr(args, "home", None):
        return _run_app(args, demo=True)
    import tempfile

    with tempfile.TemporaryDirectory(prefix="promptlooper-demo-") as home:
        return _run_app(args, demo=True, home=home)


def _run_app(args: argparse.Namespace, *, demo: bool, home: str | None = None) -> int:
    # Imported here: textual is not loaded for any other command.
    from .tui.factory import make_app
    from .tui.themes import user_theme_dir

    settings = Settings.resolve(home or getattr(args, "home", None))
    app = make_app(settings, user_theme_dir=user_theme_dir(), demo=demo)
    app.run()
    if not demo:
        sys.stderr.write(unfinished_sweeps_note(app, settings))
    return app.return_code or EXIT_OK


def unfinished_sweeps_note(app: PromptLooperApp, settings: Settings) -> str:
    """What to tell the terminal once the app has quit: the sweeps that were still running
    (quitting stopped them) and how to resume each; empty when there were none."""
    try:
        stopped = app.workbench.stopped_on_close
    except PromptLooperError:  # the workbench never opened
        return ""
    return "".join(
        f"Sweep {sweep_id} of {experiment} stopped when the app quit; finished runs are saved. "
        f"Resume with: {command_line(settings, 'resume', sweep_id)}\n"
        for sweep_id, experiment in stopped.items()
    )


def _parse_price(text: str) -> tuple[str, tuple[float, float]]:
    model, _, prices = text.partition("=")
    try:
        price_in, price_out = (float(p) for p in prices.split(","))
    except ValueError:
        raise BadInput(
            f"--price {text!r}: expected MODEL=IN,OUT (prices per million tokens)"
        ) from None
    return model, (price_in, price_out)


# -- parser ------------------------------------------------------------------------------------


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    return value


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a number of at least 1, got {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--home",
        default=argparse.SUPPRESS,
        help="data directory (default $PROMPTLOOPER_HOME, else ~/.local/share/promptlooper)",
    )
    json_flag = argparse.ArgumentParser(add_help=False)
    json_flag.add_argument("--json", action="store_true", help="print one JSON document")

    parser = argparse.ArgumentParser(
        prog="promptlooper",
        description="Sweep prompt variants x models x parameters against any OpenAI-compatible "
        "endpoint; cache, score, rank and export.",
        parents=[common],
    )
    parser.add_argument("--version", action="version", version=f"promptlooper {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = commands.add_parser("tui", parents=[common], help="the full-screen app (the default)")
    p.set_defaults(sync_handler=cmd_tui)
    p = commands.add_parser(
        "demo",
        parents=[common],
        help="watch a sample sweep against the built-in simulated endpoint, live in the app",
    )
    p.set_defaults(sync_handler=cmd_demo)

    p = commands.add_parser("validate", parents=[common, json_flag], help="check experiment files")
    p.add_argument("files", nargs="+", metavar="FILE")
    p.set_defaults(sync_handler=cmd_validate)

    p = commands.add_parser("run", parents=[common, json_flag], help="run a sweep headless")
    p.add_argument("file", metavar="FILE")
    p.add_argument("--strategy", choices=["grid", "random", "guided", "racing"])
    p.add_argument("--samples", type=_positive, help="configs to try (random, guided, racing)")
    p.add_argument("--repeats", type=_positive, help="runs per config per item")
    p.add_argument("--concurrency", type=_positive, help="most LLM calls at once")
    p.add_argument("--max-tokens", type=_positive, help="token budget for the sweep")
    p.add_argument("--seed", type=int)
    p.add_argument("--no-cache", action="store_true", help="make every call afresh")
    p.add_argument("--dry-run", action="store_true", help="show the plan; spend nothing")
    p.add_argument("--top", type=_positive, default=10, help="leaderboard rows (default 10)")
    p.set_defaults(handler=cmd_run)

    p = commands.add_parser(
        "resume", parents=[common, json_flag], help="finish an interrupted sweep"
    )
    p.add_argument("sweep", metavar="SWEEP_ID")
    p.add_argument("--retry-failed", action="store_true", help="run failed runs again")
    p.add_argument("--max-tokens", type=_positive, help="a new token budget for the sweep")
    p.add_argument("--top", type=_positive, default=10)
    # `promptlooper mcp` hands its sweeps over with this when its client disconnects.
    p.add_argument("--after-pid", type=_positive, help=argparse.SUPPRESS)
    p.set_defaults(handler=cmd_resume)

    group = commands.add_parser("experiments", help="list and show experiments")
    sub = group.add_subparsers(dest="action", metavar="ACTION", required=True)
    p = sub.add_parser(
        "list",
        parents=[common, json_flag],
        help="every experiment, its latest sweep and best score",
    )
    p.set_defaults(handler=cmd_experiments_list)
    p = sub.add_parser(
        "show", parents=[common, json_flag], help="one experiment's spec (a version with --version)"
    )
    p.add_argument("experiment", metavar="ID")
    p.add_argument("--version", type=_positive)
    p.set_defaults(handler=cmd_experiments_show)

    group = commands.add_parser("sweeps", help="list and show sweeps")
    sub = group.add_subparsers(dest="action", metavar="ACTION", required=True)
    p = sub.add_parser(
        "list",
        parents=[common, json_flag],
        help="sweeps with status; interrupted ones are resumable",
    )
    p.add_argument("--experiment", metavar="ID")
    p.set_defaults(handler=cmd_sweeps_list)
    p = sub.add_parser(
        "show", parents=[common, json_flag], help="a sweep's summary and leaderboard"
    )
    p.add_argument("sweep", metavar="SWEEP_ID")
    p.add_argument("--top", type=_positive, default=10)
    p.set_defaults(handler=cmd_sweeps_show)

    group = commands.add_parser("runs", help="list and show runs")
    sub = group.add_subparsers(dest="action", metavar="ACTION", required=True)
    p = sub.add_parser("list", parents=[common, json_flag], help="runs, filtered and paged")
    # Positional, as for `leaderboard` and `export`; --experiment kept for scripts.
    p.add_argument("experiment_ref", nargs="?", metavar="EXPERIMENT", help="experiment id or name")
    p.add_argument("--experiment", metavar="ID", help=argparse.SUPPRESS)
    p.add_argument("--sweep", metavar="SWEEP_ID")
    p.add_argument("--status", choices=["completed", "failed"])
    p.add_argument("--min-score", type=_fraction)
    p.add_argument("--max-score", type=_fraction)
    p.add_argument("--limit", type=_positive, default=50, help="runs shown (default 50)")
    p.add_argument("--offset", type=int, default=0, help="runs skipped, newest first")
    p.set_defaults(handler=cmd_runs_list)
    p = sub.add_parser("show", parents=[common, json_flag], help="one run: stages, outputs, scores")
    p.add_argument("run", metavar="RUN_ID")
    p.set_defaults(handler=cmd_runs_show)

    p = commands.add_parser(
        "score",
        parents=[common, json_flag],
        help="rate a run (0..1); a new rating replaces your earlier one of the run",
    )
    p.add_argument("run", metavar="RUN_ID")
    p.add_argument("value", type=_fraction, metavar="VALUE", help="0 = worst, 1 = best")
    p.add_argument(
        "--scorer",
        default="human",
        help="your name as a rater (default human); not one of the experiment's scorers",
    )
    p.add_argument("--note")
    p.set_defaults(handler=cmd_score)

    p = commands.add_parser(
        "leaderboard",
        parents=[common, json_flag],
        help="ranked configs of the experiment's latest version, over all its sweeps",
    )
    p.add_argument("experiment", metavar="EXPERIMENT")
    p.add_argument("--top", type=_positive, default=10, help="configs shown (default 10)")
    p.add_argument("--sweep", metavar="SWEEP_ID", help="rank this sweep alone")
    p.set_defaults(handler=cmd_leaderboard)

    group = commands.add_parser("endpoints", help="manage OpenAI-compatible endpoints")
    sub = group.add_subparsers(dest="action", metavar="ACTION", required=True)
    p = sub.add_parser(
        "add",
        parents=[common, json_flag],
        help="store an endpoint (its key encrypted, or named by variable)",
    )
    p.add_argument("name")
    p.add_argument("--base-url", required=True, help="e.g. http://127.0.0.1:8080/v1")
    key = p.add_mutually_exclusive_group()
    key.add_argument("--api-key-env", metavar="VAR", help="read the key from this variable")
    key.add_argument(
        "--api-key-stdin", action="store_true", help="read the key from stdin; stored encrypted"
    )
    p.add_argument(
        "--price",
        action="append",
        metavar="MODEL=IN,OUT",
        help="price per million input/output tokens (repeatable; MODEL may be *)",
    )
    p.add_argument(
        "--max-response-mb",
        type=float,
        metavar="N",
        help="largest answer body accepted, in MiB (default 8); a larger one fails the call",
    )
    p.add_argument(
        "--deadline",
        type=float,
        metavar="S",
        help="seconds one request may take from connecting to its last byte (default 300)",
    )
    p.add_argument(
        "--idle-timeout",
        type=float,
        metavar="S",
        help="seconds an answer may stay silent before the request is retried (default 60)",
    )
    p.add_argument(
        "--rate-limit-wait",
        type=float,
        metavar="S",
        help="seconds a call may wait on HTTP 429 answers before it fails (default 600)",
    )
    p.set_defaults(handler=cmd_endpoints_add)
    p = sub.add_parser(
        "list", parents=[common, json_flag], help="stored endpoints (keys never shown)"
    )
    p.set_defaults(handler=cmd_endpoints_list)
    p = sub.add_parser(
        "test", parents=[common, json_flag], help="connect and list the endpoint's models"
    )
    p.add_argument("name")
    p.set_defaults(handler=cmd_endpoints_test)
    p = sub.add_parser("remove", parents=[common], help="forget an endpoint")
    p.add_argument("name")
    p.set_defaults(handler=cmd_endpoints_remove)

    group = commands.add_parser("cache", help="cache statistics and clearing")
    sub = group.add_subparsers(dest="action", metavar="ACTION", required=True)
    p = sub.add_parser("stats", parents=[common, json_flag], help="hits, misses, entries, bytes")
    p.set_defaults(handler=cmd_cache_stats)
    p = sub.add_parser("clear", parents=[common], help="remove every cached LLM call")
    p.set_defaults(handler=cmd_cache_clear)

    # -- export commands --

    p = commands.add_parser(
        "export", parents=[common], help="export the best config or every run of a sweep"
    )
    p.add_argument("experiment", metavar="EXPERIMENT")
    p.add_argument(
        "--format",
        required=True,
        metavar="FORMAT",
        help="json, yaml or env (best config); report (Markdown); csv or jsonl (every run)",
    )
    p.add_argument("-o", "--output", metavar="FILE", help="write FILE atomically (default stdout)")
    p.add_argument(
        "--sweep",
        metavar="SWEEP_ID",
        help="rank and export this sweep alone (default: the best over every sweep of the "
        "latest version; report, csv and jsonl list the latest sweep's runs)",
    )
    p.add_argument("--top", type=_positive, default=10, help="leaderboard rows of the report")
    p.set_defaults(handler=cmd_export)

    # -- webhooks commands --

    group = commands.add_parser("webhooks", help="POST events to URLs (signed with a secret)")
    sub = group.add_subparsers(dest="action", metavar="ACTION", required=True)
    p = sub.add_parser("add", parents=[common, json_flag], help="send events to a URL")
    p.add_argument("url", metavar="URL")
    p.add_argument(
        "--events",
        metavar="TYPE,...",
        help="event types to send, e.g. run.completed,sweep.completed (default: all)",
    )
    secret = p.add_mutually_exclusive_group()
    secret.add_argument(
        "--secret",
        metavar="S",
        help="signing secret, stored encrypted (a flag value shows in `ps` and shell history: "
        "--secret-stdin avoids that)",
    )
    secret.add_argument(
        "--secret-stdin",
        action="store_true",
        help="read the signing secret from stdin",
    )
    p.set_defaults(handler=cmd_webhooks_add)
    p = sub.add_parser(
        "list", parents=[common, json_flag], help="stored webhooks (secrets never shown)"
    )
    p.set_defaults(handler=cmd_webhooks_list)
    p = sub.add_parser("remove", parents=[common, json_flag], help="stop sending to a webhook")
    p.add_argument("id", metavar="ID")
    p.set_defaults(handler=cmd_webhooks_remove)
    p = sub.add_parser("deliveries", parents=[common, json_flag], help="delivery attempts")
    p.add_argument("id", metavar="ID", nargs="?", help="one webhook (default: all)")
    p.add_argument("--limit", type=_positive, default=50)
    p.set_defaults(handler=cmd_webhooks_deliveries)

    p = commands.add_parser(
        "serve", parents=[common], help="headless daemon: HTTP API, websocket feed, MCP over HTTP"
    )
    p.add_argument("--host", default="127.0.0.1", help="interface to bind (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8400, help="HTTP API and /ws port")
    p.add_argument("--mcp-port", type=int, default=8401, help="MCP streamable-HTTP port")
    p.add_argument(
        "--resume-interrupted", action="store_true", help="resume interrupted sweeps at start"
    )
    p.add_argument("--log-json", action="store_true", help="log JSON lines to stderr")
    p.add_argument(
        "--allowed-host",
        action="append",
        default=[],
        metavar="HOST",
        help="also answer API requests whose Host header names HOST (repeatable; loopback "
        "names and --host are always allowed)",
    )
    _remote_caller_flags(p)
    p.set_defaults(sync_handler=cmd_serve)

    p = commands.add_parser("mcp", parents=[common], help="MCP server over stdio")
    p.add_argument("--log-json", action="store_true", help="log JSON lines to stderr")
    _remote_caller_flags(p)
    p.set_defaults(sync_handler=cmd_mcp)

    p = commands.add_parser(
        "simulate-endpoint", help="serve the built-in simulated OpenAI-compatible endpoint"
    )
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8080)
    p.add_argument("--latency-ms", type=float, default=0.0)
    p.add_argument("--fail-rate", type=_fraction, default=0.0, help="share of HTTP 500 answers")
    p.add_argument("--rate-limit-rate", type=_fraction, default=0.0, help="share of HTTP 429s")
    p.add_argument("--retry-after", type=float, default=1.0, help="Retry-After of 429s (s)")
    p.add_argument("--cut-rate", type=_fraction, default=0.0, help="share of cut streams")
    p.add_argument("--malformed-rate", type=_fraction, default=0.0, help="share of bad JSON")
    p.add_argument("--api-key", help="require this bearer token")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(sync_handler=cmd_simulate_endpoint)
    return parser


# -- entry point -------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.command is None:
            if not (sys.stdin.isatty() and sys.stdout.isatty()):
                # A script or a pipe: an app it cannot see would only hang it.
                parser.print_help(sys.stderr)
                sys.stderr.write(
                    "\nerror: the app needs a terminal (stdin and stdout); give a command\n"
                )
                return EXIT_BAD_INPUT
            return cmd_tui(args)
        if hasattr(args, "sync_handler"):
            return int(args.sync_handler(args))
        settings = Settings.resolve(getattr(args, "home", None))
        return asyncio.run(_with_workbench(args.handler, args, settings))
    except BadInput as exc:
        sys.stderr.write(f"error: {exc}\n")
        return EXIT_BAD_INPUT
    except (EndpointError, StorageError, PromptLooperError) as exc:
        sys.stderr.write(f"error: {exc}\n")
        return EXIT_FAILED
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        return 130


async def _with_workbench(handler: Handler, args: argparse.Namespace, settings: Settings) -> int:
    from .service import open_workbench

    async with open_workbench(settings) as wb:
        return await handler(args, wb)
