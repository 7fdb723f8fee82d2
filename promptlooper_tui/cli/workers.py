"""`promptlooper workers list`: the `promptlooper worker` processes on the store, what each
works on, and which are gone."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from .arguments import Parsers
from .exit_codes import EXIT_OK

if TYPE_CHECKING:
    from ..domain.records import WorkerRecord
    from ..workbench import Workbench


def add_workers_parser(parsers: Parsers) -> None:
    actions = parsers.add_group("workers", help="the worker processes on the store (--db)")
    p = actions.add_parser(
        "list",
        parents=[parsers.home, parsers.json],
        help="each worker: what it works on, runs done, when it was last seen",
    )
    p.set_defaults(handler=cmd_workers_list)


async def cmd_workers_list(args: argparse.Namespace, wb: Workbench) -> int:
    from .output import print_json, table

    workers = await wb.list_workers()
    if args.json:
        print_json(workers)
        return EXIT_OK
    table(
        ["name", "host", "pid", "working on", "runs", "last seen"],
        [[w.name, w.host, w.pid, _working_on(w), w.runs_done, _last_seen(w)] for w in workers],
        trim=3,
        right=(2, 4),
    )
    return EXIT_OK


def _working_on(worker: WorkerRecord) -> str:
    if worker.sweep_id is None:
        return "-"
    if worker.experiment is None:
        return worker.sweep_id
    return f"{worker.sweep_id} ({worker.experiment})"


def _last_seen(worker: WorkerRecord) -> str:
    """ "2 s ago", "3 min ago"; a gone worker says so first."""
    seconds = int(worker.seen_ago_s)
    if seconds < 60:
        ago = f"{seconds} s ago"
    elif seconds < 3600:
        ago = f"{seconds // 60} min ago"
    else:
        ago = f"{seconds // 3600} h ago"
    return f"gone ({ago})" if worker.gone else ago
