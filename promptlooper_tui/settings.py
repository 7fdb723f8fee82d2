"""Where PromptLooper keeps its files: `--home`, else $PROMPTLOOPER_HOME, else the XDG data dir."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


def default_home() -> Path:
    explicit = os.environ.get("PROMPTLOOPER_HOME")
    if explicit:
        return Path(explicit).expanduser()
    data = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(data) / "promptlooper"


@dataclass(frozen=True)
class Settings:
    home: Path

    @classmethod
    def resolve(cls, home: str | Path | None = None) -> Settings:
        return cls(Path(home).expanduser() if home else default_home())

    @property
    def db_path(self) -> Path:
        return self.home / "promptlooper.db"

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
