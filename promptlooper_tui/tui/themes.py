"""Colour themes as YAML files: the ones shipped with the app and the user's own.

A theme file holds the fields of `textual.theme.Theme` (colours as CSS colour strings):

    name: my-theme
    primary: "#5fb3b3"
    background: "#14161b"
    dark: true

Shipped themes live in the `themes/` folder at the top of the source tree (found from a
checkout or an editable install; without it the app falls back to Textual's own themes).
User themes are read from `$XDG_CONFIG_HOME/promptlooper/themes/*.yaml` (by default
`~/.config/promptlooper/themes/`); a user theme with a shipped theme's name replaces it. A
file that does not parse or validate is skipped and named in the problems, so one bad file
never hides the rest.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import pydantic
import yaml
from textual.color import Color, ColorParseError
from textual.theme import Theme

from ..resources import shipped_dir

#: The theme a first start uses, and Textual's own theme when the shipped ones are missing.
DEFAULT_THEME = "promptlooper"
FALLBACK_THEME = "textual-dark"


class ThemeFile(pydantic.BaseModel):
    """One theme file's contents; unknown keys are errors so a typo is reported, not ignored."""

    model_config = pydantic.ConfigDict(extra="forbid")

    name: str = pydantic.Field(min_length=1, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    primary: str
    secondary: str | None = None
    accent: str | None = None
    warning: str | None = None
    error: str | None = None
    success: str | None = None
    foreground: str | None = None
    background: str | None = None
    surface: str | None = None
    panel: str | None = None
    boost: str | None = None
    dark: bool = True
    luminosity_spread: float = pydantic.Field(default=0.15, ge=0, le=1)
    text_alpha: float = pydantic.Field(default=0.95, ge=0, le=1)
    variables: dict[str, str] = pydantic.Field(default_factory=dict)

    @pydantic.field_validator(
        "primary",
        "secondary",
        "accent",
        "warning",
        "error",
        "success",
        "foreground",
        "background",
        "surface",
        "panel",
        "boost",
    )
    @classmethod
    def _colour(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                Color.parse(value)
            except ColorParseError:
                raise ValueError(f"not a colour: {value!r}") from None
        return value

    def to_theme(self) -> Theme:
        return Theme(**self.model_dump())


@dataclass
class LoadedThemes:
    themes: list[Theme] = field(default_factory=list)
    #: One line per file that could not be used: "path: what is wrong".
    problems: list[str] = field(default_factory=list)


def shipped_theme_dir() -> Path | None:
    """The shipped themes' folder, or None when this install does not have it."""
    folder = shipped_dir("themes")
    # Checked for the default theme's file, so an unrelated `themes/` beside an installed
    # package is never taken for ours.
    return folder if folder and (folder / f"{DEFAULT_THEME}.yaml").is_file() else None


def user_theme_dir() -> Path:
    """`$XDG_CONFIG_HOME/promptlooper/themes`, by default `~/.config/promptlooper/themes`."""
    config = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(config) / "promptlooper" / "themes"


def load_themes(*directories: Path | None) -> LoadedThemes:
    """Every `*.yaml`/`*.yml` theme in the directories, in order; a later file wins a name.
    Missing directories (or None) are skipped."""
    loaded = LoadedThemes()
    for directory in directories:
        if directory is None or not directory.is_dir():
            continue
        for path in sorted([*directory.glob("*.yaml"), *directory.glob("*.yml")]):
            try:
                loaded.themes.append(read_theme_file(path))
            except ValueError as exc:
                loaded.problems.append(f"{path}: {exc}")
    return loaded


def read_theme_file(path: Path) -> Theme:
    """One theme; raises ValueError saying what is wrong with the file."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise ValueError(f"cannot read: {exc}".splitlines()[0]) from None
    if not isinstance(data, dict):
        raise ValueError("expected a mapping of theme fields")
    try:
        return ThemeFile.model_validate(data).to_theme()
    except pydantic.ValidationError as exc:
        details = "; ".join(
            f"{'.'.join(str(p) for p in error['loc']) or 'file'}: {error['msg']}"
            for error in exc.errors()
        )
        raise ValueError(details) from None
