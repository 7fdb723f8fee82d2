"""The `promptlooper ...` command lines PromptLooper prints for a person to paste (resume a
sweep, list sweeps): each carries the `--home` and `--db` it needs."""

from __future__ import annotations

import os
import shlex

from .settings import Settings, default_home


def command_line(settings: Settings, *words: str) -> str:
    """`promptlooper [--home HOME] WORDS...`, quoted for a POSIX shell. `--home` is left out
    only for the default home (the XDG data dir, with $PROMPTLOOPER_HOME unset), so the line
    works in any shell, not only in one that has the same $PROMPTLOOPER_HOME. `--db` is there
    when the store is not the home's file; a password in its URL is printed as *** (it is
    never shown), so such a line needs the password put back, or kept in ~/.pgpass."""
    default = settings.home == default_home() and not os.environ.get("PROMPTLOOPER_HOME")
    home = [] if default else ["--home", str(settings.home)]
    db = [] if settings.db is None else ["--db", settings.db.shown]
    return shlex.join(["promptlooper", *home, *db, *words])
