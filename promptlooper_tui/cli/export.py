"""`promptlooper export`: the best config or every run of a sweep, to a file or stdout."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from .arguments import Parsers, positive
from .exit_codes import EXIT_OK

if TYPE_CHECKING:
    from ..workbench import Workbench


def add_export_parser(parsers: Parsers) -> None:
    p = parsers.commands.add_parser(
        "export", parents=[parsers.home], help="export the best config or every run of a sweep"
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
    p.add_argument("--top", type=positive, default=10, help="leaderboard rows of the report")
    p.set_defaults(handler=cmd_export)


async def cmd_export(args: argparse.Namespace, wb: Workbench) -> int:
    """Export to -o FILE atomically, or to stdout with nothing else printed there."""
    import os

    from ..export import write_atomically

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
