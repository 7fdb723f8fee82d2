"""`promptlooper worker`: join the pool working on the store's sweeps (DESIGN §10)."""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import socket
import sys
from typing import TYPE_CHECKING

from .arguments import Parsers, positive
from .exit_codes import EXIT_OK

if TYPE_CHECKING:
    from ..workbench import Workbench


def add_worker_parser(parsers: Parsers) -> None:
    p = parsers.commands.add_parser(
        "worker",
        parents=[parsers.home],
        help="join the pool: run the work of any sweep on the store (--db) until SIGTERM",
        description="Claim and run the pending work of any running sweep on the store, and "
        "take over sweeps whose coordinator is gone. Leaves cleanly on SIGTERM or Ctrl-C: "
        "runs in flight finish, sweeps it coordinates carry on elsewhere.",
    )
    p.add_argument(
        "--concurrency",
        type=positive,
        default=None,
        metavar="N",
        help="most calls in flight per sweep (default: each sweep's own max_concurrency)",
    )
    p.add_argument("--name", default=None, help="what `workers list` calls it (default: HOST-PID)")
    p.set_defaults(handler=cmd_worker)


async def cmd_worker(args: argparse.Namespace, wb: Workbench) -> int:
    name = args.name or f"{socket.gethostname()}-{os.getpid()}"

    def say(message: str) -> None:
        sys.stderr.write(f"worker {name}: {message}\n")

    worker = wb.team_worker(name, args.concurrency, say)
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, worker.leave)
    say(f"working on {wb.db.shown} (SIGTERM or Ctrl-C to leave)")
    try:
        report = await worker.run()
    finally:
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)
    say(
        f"left: {report.runs} runs done, {report.sweeps_helped} sweeps helped, "
        f"{report.sweeps_taken_over} taken over"
    )
    return EXIT_OK
