"""The `promptlooper` command: parse, call the Workbench, print. One module per command group
(`sweeps`, `runs`, `endpoints`...), the parser built from them (`parser`), their printing
(`output`, and `progress` while a sweep runs), and `main`, which maps errors to exit codes
(`exit_codes`) in one place."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING

from ..domain.errors import BadInput, PromptLooperError
from ..garbage_collection import collect_less_often
from ..settings import Settings
from .app import cmd_tui
from .exit_codes import EXIT_BAD_INPUT, EXIT_BROKEN_PIPE, EXIT_FAILED, EXIT_INTERRUPTED
from .parser import build_parser

if TYPE_CHECKING:
    from ..workbench import Workbench

Handler = Callable[[argparse.Namespace, "Workbench"], Awaitable[int]]


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
        import asyncio  # here: the parser and --help do without it

        collect_less_often()
        settings = Settings.resolve(getattr(args, "home", None), getattr(args, "db", None))
        return asyncio.run(_with_workbench(args.handler, args, settings))
    except BadInput as exc:
        sys.stderr.write(f"error: {exc}\n")
        return EXIT_BAD_INPUT
    except PromptLooperError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return EXIT_FAILED
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # The reader went away (`promptlooper runs list | head`): what it did not read is not
        # an error to report. Point stdout at /dev/null so the interpreter's last flush at exit
        # does not fail again, and end as a program killed by SIGPIPE would.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
        return EXIT_BROKEN_PIPE


async def _with_workbench(handler: Handler, args: argparse.Namespace, settings: Settings) -> int:
    from ..workbench import open_workbench

    async with open_workbench(settings) as wb:
        return await handler(args, wb)
