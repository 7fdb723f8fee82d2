"""What the app remembers between sessions (theme, key overrides): `tui.json` in the home dir."""

from __future__ import annotations

import json
from pathlib import Path

import pydantic


class Preferences(pydantic.BaseModel):
    theme: str | None = None
    #: Binding id -> keys, e.g. {"monitor.pause": "space"} (ids are listed in the help screen).
    keymap: dict[str, str] = pydantic.Field(default_factory=dict)

    @classmethod
    def load(cls, path: Path) -> Preferences:
        """The saved preferences; defaults when the file is missing or unreadable."""
        try:
            return cls.model_validate(json.loads(path.read_text(encoding="utf-8")))
        except (OSError, ValueError):
            return cls()

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(self.model_dump_json(indent=2) + "\n", encoding="utf-8")
