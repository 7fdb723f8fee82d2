"""Where the store lives: `--db URL` / $PROMPTLOOPER_DB, read into a `DatabaseLocation`.

`sqlite:///PATH` (or a plain path) is a file of one's own; `postgresql://USER@HOST/DB` (or
`postgres://`) is a team's shared server. A URL's password is never shown: `shown` replaces it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from ..domain.errors import BadInput

_POSTGRES_SCHEMES = ("postgresql", "postgres")


@dataclass(frozen=True)
class DatabaseLocation:
    kind: Literal["sqlite", "postgresql"]
    #: The URL to connect with: it may hold a password, so it is never shown.
    url: str = field(repr=False)
    #: The SQLite file (None for PostgreSQL).
    path: Path | None = None

    @property
    def shown(self) -> str:
        """The location as it may be shown: a password replaced by ***."""
        return str(self.path) if self.path is not None else _shown(self.url)

    @classmethod
    def sqlite(cls, path: Path) -> DatabaseLocation:
        # The URL names the file from anywhere: another process may start in another folder.
        return cls("sqlite", f"sqlite:///{path.absolute()}", path)


def parse_database_url(
    text: str, *, base: Path | None = None, flag: str = "--db"
) -> DatabaseLocation:
    """Read `--db`/$PROMPTLOOPER_DB; BadInput names what is wrong with it (and `flag`, the
    option it came from), never showing a password.

    A relative SQLite path is taken from `base` (default: the current directory).
    """
    text = text.strip()
    if not text:
        raise BadInput(f"{flag}: empty; give sqlite:///PATH or postgresql://USER@HOST/DB")
    scheme, sep, rest = text.partition("://")
    if not sep:
        if ":" in text.split("/", 1)[0] and not Path(text).exists():
            raise BadInput(f"{flag} {_shown(text)!r}: not a URL PromptLooper knows; {_KNOWN}")
        return DatabaseLocation.sqlite(_sqlite_path(text, base, flag))
    scheme = scheme.lower()
    if scheme == "sqlite":
        if not rest.startswith("/") or rest == "/":
            raise BadInput(
                f"{flag} {_shown(text)!r}: a SQLite URL is sqlite:///PATH (three slashes, "
                "then the file)"
            )
        return DatabaseLocation.sqlite(_sqlite_path(rest[1:] or "/", base, flag, absolute=True))
    if scheme in _POSTGRES_SCHEMES:
        return _postgres(text, flag)
    raise BadInput(f"{flag} {_shown(text)!r}: unknown scheme {scheme!r}; {_KNOWN}")


_KNOWN = "use sqlite:///PATH or postgresql://USER@HOST[:PORT]/DB"


def _sqlite_path(text: str, base: Path | None, flag: str, *, absolute: bool = False) -> Path:
    path = Path(text).expanduser()
    if absolute and not path.is_absolute():
        # sqlite:///home/me/x.db names /home/me/x.db; sqlite:////home/me/x.db as well.
        path = Path("/") / path
    if not path.is_absolute():
        path = (base or Path.cwd()) / path
    if path.exists() and path.is_dir():
        raise BadInput(f"{flag} {text!r}: {path} is a directory, not a database file")
    return path


def _postgres(text: str, flag: str) -> DatabaseLocation:
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError:
        # Not the parser's words: they may quote part of a password.
        raise BadInput(
            f"{flag} {_shown(text)!r}: cannot read its host and port (a port is a number up "
            "to 65535; a password's / ? # @ and : must be %-encoded)"
        ) from None
    if not parts.hostname and "host=" not in parts.query:
        raise BadInput(f"{flag} {_shown(text)!r}: no host; {_KNOWN}")
    if not parts.path.strip("/"):
        raise BadInput(f"{flag} {_shown(text)!r}: no database name after the host; {_KNOWN}")
    if port == 0:
        raise BadInput(f"{flag} {_shown(text)!r}: port 0 is not a port")
    return DatabaseLocation("postgresql", text)


def _shown(text: str) -> str:
    """`text` with any password replaced by ***, for messages (the URL may not parse): all
    after USER: up to the last @ (a password may hold / ? or @ that no parser would split on),
    and a password= parameter."""
    scheme, sep, rest = text.partition("://")
    if not sep:
        scheme, rest = "", text
    user, at, host = rest.rpartition("@")
    if at and ":" in user:
        rest = f"{user.partition(':')[0]}:***@{host}"
    return scheme + sep + _PASSWORD_PARAMETER.sub(r"\1***", rest)


_PASSWORD_PARAMETER = re.compile(r"(?i)(password=)[^&]*")
