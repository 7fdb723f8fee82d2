"""Who is asking: the person at the terminal, or a caller over the API, websocket or MCP.

DESIGN §9. The person at the terminal and the files they name are trusted. Everything that
arrives over the daemon's HTTP API, its websocket, or MCP (stdio included: an agent acts on
text it read) is trusted no further than its token allows: its experiments read dataset files
only under the data folder and name API-key variables only from the operator's allow-list.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class CallerPolicy:
    """What the callers of one Workbench may reach. `local()` for the CLI and the app."""

    remote: bool = False
    #: Remote callers' dataset files must lie under this folder (resolved, symlinks followed).
    data_dir: Path | None = None
    #: Environment variable names a remote caller may name as `api_key_env`.
    allowed_key_env: frozenset[str] = field(default_factory=frozenset)

    @classmethod
    def local(cls) -> CallerPolicy:
        return cls()

    @classmethod
    def for_remote(cls, data_dir: Path, allowed_key_env: Iterable[str] = ()) -> CallerPolicy:
        return cls(
            remote=True,
            data_dir=data_dir,
            allowed_key_env=frozenset(name for name in allowed_key_env if name),
        )

    def may_read_key_env(self, name: str) -> bool:
        return not self.remote or name in self.allowed_key_env
