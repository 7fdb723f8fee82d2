"""The `promptlooper` argument parser, built from the command modules in the order `--help`
lists them. Building it imports no command's machinery: each handler imports what it uses."""

from __future__ import annotations

import argparse

from .. import __version__
from . import (
    app,
    cache,
    daemons,
    db,
    endpoints,
    evolve,
    experiments,
    export,
    runs,
    simulator,
    sweeps,
    webhooks,
    worker,
    workers,
)
from .arguments import Parsers

#: Each adds one command (or one command group) to the parser, in the order of `--help`.
COMMANDS = (
    app.add_tui_parser,
    app.add_demo_parser,
    experiments.add_validate_parser,
    sweeps.add_run_parser,
    sweeps.add_resume_parser,
    experiments.add_experiments_parser,
    sweeps.add_sweeps_parser,
    runs.add_runs_parser,
    runs.add_score_parser,
    experiments.add_leaderboard_parser,
    evolve.add_evolve_parser,
    endpoints.add_endpoints_parser,
    cache.add_cache_parser,
    db.add_db_parser,
    worker.add_worker_parser,
    workers.add_workers_parser,
    export.add_export_parser,
    webhooks.add_webhooks_parser,
    daemons.add_serve_parser,
    daemons.add_mcp_parser,
    simulator.add_simulate_endpoint_parser,
)


def build_parser() -> argparse.ArgumentParser:
    home = argparse.ArgumentParser(add_help=False)
    home.add_argument(
        "--home",
        default=argparse.SUPPRESS,
        help="data directory (default $PROMPTLOOPER_HOME, else ~/.local/share/promptlooper)",
    )
    home.add_argument(
        "--db",
        default=argparse.SUPPRESS,
        metavar="URL",
        help="the store: sqlite:///PATH (or a file path) or postgresql://USER@HOST[:PORT]/DB "
        "(default $PROMPTLOOPER_DB, else promptlooper.db in the data directory)",
    )
    json_flag = argparse.ArgumentParser(add_help=False)
    json_flag.add_argument("--json", action="store_true", help="print one JSON document")

    parser = argparse.ArgumentParser(
        prog="promptlooper",
        description="Sweep prompt variants x models x parameters against any OpenAI-compatible "
        "endpoint; cache, score, rank and export.",
        parents=[home],
    )
    parser.add_argument("--version", action="version", version=f"promptlooper {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    parsers = Parsers(commands=commands, home=home, json=json_flag)
    for add_command in COMMANDS:
        add_command(parsers)
    return parser
