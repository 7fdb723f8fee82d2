"""Where PromptLooper keeps its files: `--home`, else $PROMPTLOOPER_HOME, else the XDG data dir;
and its store: `--db`, else $PROMPTLOOPER_DB, else the SQLite file in the home."""

from __future__ import annotations

import logging
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .store.location import DatabaseLocation

log = logging.getLogger(__name__)

#: Homes already checked by this process, so a loose one is reported once, not per file.
_checked_homes: set[Path] = set()


def default_home() -> Path:
    explicit = os.environ.get("PROMPTLOOPER_HOME")
    if explicit:
        return Path(explicit).expanduser()
    data = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(data) / "promptlooper"


def ensure_home(home: Path) -> None:
    """Create `home` with mode 0700 (its missing parents get the usual mode). An existing home
    keeps its mode, since the person may have chosen it, but a warning says when others can
    enter it. Raises OSError when it cannot be created."""
    try:
        home.mkdir(mode=0o700, parents=True)
    except FileExistsError:
        if home in _checked_homes:
            return
        _checked_homes.add(home)
        mode = stat.S_IMODE(home.stat().st_mode)
        if mode & 0o077:
            log.warning(
                "the PromptLooper home %s has mode %o: other users can enter it; "
                "`chmod 700 %s` makes it private",
                home,
                mode,
                home,
            )
    else:
        _checked_homes.add(home)


def restrict_to_owner(path: Path) -> None:
    """Take every permission of group and others off an existing file (0644 becomes 0600),
    with a warning when there were any; the owner's own are kept (a 0444 file stays
    read-only, 0400), and a missing file is left missing."""
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        return
    if mode & 0o077:
        # Readable by others means anyone on the machine could read what it holds.
        private = mode & ~0o077
        log.warning("%s had mode %o; tightening it to %o", path, mode, private)
        path.chmod(private)


@dataclass(frozen=True)
class Settings:
    home: Path
    #: Where the store lives (`--db`); None: the SQLite file `db_path` in the home.
    db: DatabaseLocation | None = None

    @classmethod
    def resolve(cls, home: str | Path | None = None, db: str | None = None) -> Settings:
        """The settings a command runs with: `home` (`--home`), else $PROMPTLOOPER_HOME, else
        the XDG data dir; the store at `db` (`--db`), else $PROMPTLOOPER_DB, else the home's
        SQLite file. BadInput when the database URL is malformed."""
        # Imported here: the parser and `--help` load nothing of the store.
        from .store.location import parse_database_url

        url = db if db is not None else os.environ.get("PROMPTLOOPER_DB") or None
        return cls(
            Path(home).expanduser() if home else default_home(),
            parse_database_url(url) if url is not None else None,
        )

    @property
    def db_path(self) -> Path:
        """The home's own SQLite file (the store unless `db` says otherwise)."""
        return self.home / "promptlooper.db"

    @property
    def database(self) -> DatabaseLocation:
        """Where the store lives."""
        from .store.location import DatabaseLocation

        return self.db or DatabaseLocation.sqlite(self.db_path)

    @property
    def secret_key_path(self) -> Path:
        return self.home / "secret.key"

    @property
    def token_path(self) -> Path:
        return self.home / "token"

    @property
    def data_dir(self) -> Path:
        """Where experiments sent over the API or MCP may read dataset files (DESIGN §9)."""
        return self.home / "data"
