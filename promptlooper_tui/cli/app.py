"""`promptlooper tui` and `promptlooper demo`: the full-screen app (also what `promptlooper`
alone opens in a terminal)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from ..command_line import command_line
from ..domain.errors import PromptLooperError
from ..settings import Settings
from .arguments import Parsers
from .exit_codes import EXIT_OK

if TYPE_CHECKING:
    from ..tui.app import PromptLooperApp


def add_tui_parser(parsers: Parsers) -> None:
    p = parsers.commands.add_parser(
        "tui", parents=[parsers.home], help="the full-screen app (the default)"
    )
    p.set_defaults(sync_handler=cmd_tui)


def add_demo_parser(parsers: Parsers) -> None:
    p = parsers.commands.add_parser(
        "demo",
        parents=[parsers.home],
        help="watch a sample sweep against the built-in simulated endpoint, live in the app",
    )
    p.add_argument(
        "sample",
        nargs="?",
        choices=["racing", "evolve"],
        default="racing",
        help="racing (default): 24 configs raced over 60 items; evolve: a proposer model "
        "rewrites the prompts, generation after generation",
    )
    p.set_defaults(sync_handler=cmd_demo)


def cmd_tui(args: argparse.Namespace) -> int:
    """The full-screen app (also what `promptlooper` alone opens)."""
    return _run_app(args, demo=False)


def cmd_demo(args: argparse.Namespace) -> int:
    """The demo in a temporary home with its own database, removed when the app ends, so its
    sweeps never pile up in the user's (not even in $PROMPTLOOPER_DB's); with `--home DIR` or
    `--db URL`, there, where what it made is kept."""
    if getattr(args, "home", None) or getattr(args, "db", None):
        return _run_app(args, demo=True)
    import tempfile

    with tempfile.TemporaryDirectory(prefix="promptlooper-demo-") as home:
        return _run_app(args, demo=True, settings=Settings(Path(home)))


def _run_app(args: argparse.Namespace, *, demo: bool, settings: Settings | None = None) -> int:
    if settings is None:
        settings = Settings.resolve(getattr(args, "home", None), getattr(args, "db", None))
    # Imported here: textual is not loaded for any other command.
    from ..tui.factory import DEMO_EXPERIMENTS, make_app
    from ..tui.themes import user_theme_dir

    app = make_app(
        settings,
        user_theme_dir=user_theme_dir(),
        demo=demo,
        demo_experiment=DEMO_EXPERIMENTS[getattr(args, "sample", None) or "racing"],
    )
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
