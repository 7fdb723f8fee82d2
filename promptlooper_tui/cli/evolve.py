"""`promptlooper evolve apply`: an evolve sweep's winning prompt into a new version of the
experiment, stored and written as a file beside the original."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from .arguments import Parsers
from .exit_codes import EXIT_OK

if TYPE_CHECKING:
    from ..workbench import Workbench


def add_evolve_parser(parsers: Parsers) -> None:
    actions = parsers.add_group("evolve", help="what an evolve sweep found")
    p = actions.add_parser(
        "apply",
        parents=[parsers.home, parsers.json],
        help="the winning prompt into a new version of the experiment file",
        description="Take the winner of an evolve sweep (the best on the held-out items) and, "
        "when it is a prompt the sweep wrote, add it under `prompts:` and first among the "
        "prompt parameter's values, in the text of the experiment version the sweep ran "
        "(comments, order and styles kept). Only the prompt: the winner's other parameter "
        "values are not copied. The result is stored as a new version of the experiment "
        "(`promptlooper run NAME` runs it) and written to a file.",
    )
    p.add_argument("sweep", metavar="SWEEP", help="a sweep id, or an experiment (its latest)")
    p.add_argument(
        "--out",
        metavar="PATH",
        type=Path,
        help="the file to write (default: STEM.evolved.yaml beside the original file, else "
        "./NAME.evolved.yaml)",
    )
    p.add_argument("--force", action="store_true", help="overwrite the file if it exists")
    p.set_defaults(handler=cmd_evolve_apply)


async def cmd_evolve_apply(args: argparse.Namespace, wb: Workbench) -> int:
    from .output import print_json

    evolved = await wb.apply_evolution(
        args.sweep, write_file=True, out=args.out, overwrite=args.force
    )
    if args.json:
        fields = ("file", "experiment", "version", "prompt", "template")
        print_json({field: getattr(evolved, field) for field in fields})
        return EXIT_OK
    if not evolved.applied:
        sys.stdout.write(
            f"the winner is the experiment's own prompt {evolved.prompt}; nothing to apply\n"
        )
        return EXIT_OK
    sys.stdout.write(
        f"wrote {evolved.file}\n"
        f"{evolved.experiment} version {evolved.version}: prompt {evolved.prompt} first "
        f"among {evolved.parameter} (run it: promptlooper run {evolved.experiment})\n\n"
        f"{evolved.prompt}:\n{_indented(evolved.template)}\n"
    )
    return EXIT_OK


def _indented(text: str) -> str:
    return "\n".join(f"  {line}" for line in text.splitlines())
