"""Files shipped beside the code: the sample experiments and the themes.

In a source checkout (and an editable install) they are the repository's top-level
`sample_experiments/` and `themes/`; a built wheel carries them inside the package (see
pyproject.toml, `package-dir`).
"""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


def shipped_dir(name: str) -> Path | None:
    """The folder `name` (`sample_experiments` or `themes`) as installed, or None if absent."""
    for candidate in (_PACKAGE / name, _PACKAGE.parent / name):
        if candidate.is_dir():
            return candidate
    return None


#: What the sample experiments folder ships: experiment files and the datasets they read.
SAMPLE_SUFFIXES = (".yaml", ".jsonl", ".csv")


def sample_files() -> list[Path]:
    """The shipped sample experiments and their dataset files, by name; empty if absent."""
    folder = shipped_dir("sample_experiments")
    if folder is None:
        return []
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix in SAMPLE_SUFFIXES)
