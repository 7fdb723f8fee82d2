"""`promptlooper validate`, `experiments list|show` and `leaderboard`: experiment files and the
experiments stored from them."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from .arguments import Parsers, positive
from .exit_codes import EXIT_BAD_INPUT, EXIT_OK

if TYPE_CHECKING:
    from ..engine.loader import LoadedExperiment
    from ..workbench import Workbench


def add_validate_parser(parsers: Parsers) -> None:
    p = parsers.commands.add_parser(
        "validate", parents=[parsers.home, parsers.json], help="check experiment files"
    )
    p.add_argument("files", nargs="+", metavar="FILE")
    p.set_defaults(sync_handler=cmd_validate)


def add_experiments_parser(parsers: Parsers) -> None:
    actions = parsers.add_group("experiments", help="list and show experiments")
    p = actions.add_parser(
        "list",
        parents=[parsers.home, parsers.json],
        help="every experiment, its latest sweep and best score",
    )
    p.set_defaults(handler=cmd_experiments_list)
    p = actions.add_parser(
        "show",
        parents=[parsers.home, parsers.json],
        help="one experiment's spec (a version with --version)",
    )
    p.add_argument("experiment", metavar="ID")
    p.add_argument("--version", type=positive)
    p.set_defaults(handler=cmd_experiments_show)


def add_leaderboard_parser(parsers: Parsers) -> None:
    p = parsers.commands.add_parser(
        "leaderboard",
        parents=[parsers.home, parsers.json],
        help="ranked configs of the experiment's latest version, over all its sweeps",
    )
    p.add_argument("experiment", metavar="EXPERIMENT")
    p.add_argument("--top", type=positive, default=10, help="configs shown (default 10)")
    p.add_argument("--sweep", metavar="SWEEP_ID", help="rank this sweep alone")
    p.set_defaults(handler=cmd_leaderboard)


def cmd_validate(args: argparse.Namespace) -> int:
    from ..domain.errors import ValidationError
    from .output import print_json

    results: list[dict[str, object]] = []
    issues: list[dict[str, object]] = []
    for path in args.files:
        try:
            spec = load_experiment_file(path).spec
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


def load_experiment_file(path: str) -> LoadedExperiment:
    """The experiment in the file at `path`; a folder is named as such, not as an OS error."""
    from ..domain.errors import Issue, ValidationError
    from ..engine.loader import load_experiment_file

    if Path(path).is_dir():
        raise ValidationError(
            [Issue("is a directory, not an experiment file; name the YAML files", source=path)]
        )
    return load_experiment_file(path)


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'s' * (count != 1)}"


async def cmd_experiments_list(args: argparse.Namespace, wb: Workbench) -> int:
    from .output import print_json, score_text, table

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
    from .output import print_json

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


async def cmd_leaderboard(args: argparse.Namespace, wb: Workbench) -> int:
    from .output import print_json, print_leaderboard

    board = await wb.ranking(args.experiment, top=args.top, sweep=args.sweep)
    print_json(board) if args.json else print_leaderboard(board)
    return EXIT_OK
