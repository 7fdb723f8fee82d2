"""What the app remembers between sessions (theme, key overrides): `tui.json` in the home dir.

The person may edit the file: one they broke is reported and left alone (never replaced by
the defaults, which would lose their keymap), and it is written private (0600), like
everything else in the home."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pydantic
from pydantic_core import ErrorDetails


class Preferences(pydantic.BaseModel):
    # A misspelt key is reported, not dropped at the next save.
    model_config = pydantic.ConfigDict(extra="forbid")

    theme: str | None = None
    #: Binding id -> keys, e.g. {"monitor.pause": "space"} (ids are listed in the help screen).
    keymap: dict[str, str] = pydantic.Field(default_factory=dict)

    @classmethod
    def load(cls, path: Path) -> tuple[Preferences, str | None]:
        """The saved preferences (defaults when there is no file), and what is wrong with the
        file when it cannot be used: then the defaults apply and the file must not be saved
        over."""
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return cls(), None
        except OSError as exc:
            return cls(), f"cannot read it: {exc.strerror or exc}"
        try:
            return cls.model_validate(json.loads(text)), None
        except json.JSONDecodeError as exc:
            return cls(), f"not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}"
        except pydantic.ValidationError as exc:
            return cls(), "; ".join(_describe(error) for error in exc.errors())

    def unknown_keymap_ids(self, known: set[str]) -> list[str]:
        return sorted(set(self.keymap) - known)

    def save(self, path: Path) -> None:
        """Write the file atomically, readable by its owner only."""
        path.parent.mkdir(parents=True, exist_ok=True)
        temp = path.with_name(f".{path.name}.tmp")
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(self.model_dump_json(indent=2) + "\n")
        os.chmod(temp, 0o600)  # a temp file left over from a crash kept its old mode
        os.replace(temp, path)


def _describe(error: ErrorDetails) -> str:
    where = ".".join(str(part) for part in error["loc"]) or "the file"
    if error["type"] == "extra_forbidden":
        return f"{where}: unknown setting (expected theme and keymap)"
    return f"{where}: {error['msg'].lower()}"
