"""Exports of a sweep: its best config (json, yaml, env) or all of it (report, csv, jsonl).

`Workbench.export` checks the format (`writer_for`), resolves what to export into an
`ExportJob` and runs `export_sweep`; `write_atomically` gives front-ends a file that appears
only once an export has fully succeeded. Exports only read the store: no front-end, no
endpoint, so no API key can reach one.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import TextIO

from ..domain.errors import BadInput, PromptLooperError
from ..settings import Settings
from .csv_export import write_csv
from .env_export import write_env
from .json_export import write_json
from .jsonl_export import write_jsonl
from .report_export import write_report
from .source import ExportJob
from .yaml_export import write_yaml

Writer = Callable[[ExportJob, TextIO], Awaitable[None]]

WRITERS: dict[str, Writer] = {
    "json": write_json,
    "env": write_env,
    "yaml": write_yaml,
    "report": write_report,
    "csv": write_csv,
    "jsonl": write_jsonl,
}
FORMATS = tuple(WRITERS)
#: Formats of the best config: they need a scored run; the others report whatever ran.
BEST_CONFIG_FORMATS = frozenset({"json", "env", "yaml"})


def writer_for(fmt: str) -> Writer:
    """The writer of format `fmt`; BadInput for an unknown one."""
    writer = WRITERS.get(fmt)
    if writer is None:
        raise BadInput(f"unknown export format {fmt!r}; use one of {', '.join(FORMATS)}")
    return writer


async def export_sweep(job: ExportJob, fmt: str, out: TextIO) -> None:
    """Write `job` to `out` in format `fmt`.

    Raises BadInput for an unknown format, and when there is nothing to export: no scored run
    for the best-config formats, no finished run for the rest (a report or CSV of a sweep whose
    runs all failed is how one finds out why).
    """
    writer = writer_for(fmt)
    finished = job.sweep.runs_completed + job.sweep.runs_failed
    if fmt not in BEST_CONFIG_FORMATS and not finished:
        raise BadInput(f"sweep {job.sweep.id} of {job.sweep.experiment!r} has no finished runs yet")
    await writer(job, out)


@contextlib.contextmanager
def write_atomically(path: str | Path) -> Iterator[TextIO]:
    """A UTF-8 text file that replaces `path` only when the `with` block succeeds.

    It is written as a hidden temporary file next to `path`, flushed to disk, then renamed over
    it (`os.replace`); on any error the temporary file is removed and `path` left untouched.
    Inside a PromptLooper home (a folder holding its database, or one below it) the file is
    private (0600) from its creation, as everything in the home is. Elsewhere a new file gets
    the usual permissions (umask), a replaced one keeps its own.
    """
    target = Path(path)
    temp = target.with_name(f".{target.name}.{secrets.token_hex(4)}.tmp")
    private = _inside_home(target)
    try:
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600 if private else 0o666)
    except OSError as exc:
        raise BadInput(f"cannot write {target}: {exc.strerror or exc}") from None
    try:
        # newline="": writers choose their line endings (the csv module needs this).
        with open(fd, "w", encoding="utf-8", newline="") as out:
            if target.exists() and not private:
                os.chmod(temp, stat.S_IMODE(target.stat().st_mode))
            yield out
            out.flush()
            os.fsync(out.fileno())
        os.replace(temp, target)
    except OSError as exc:
        temp.unlink(missing_ok=True)
        raise PromptLooperError(f"writing {target} failed: {exc.strerror or exc}") from exc
    except BaseException:
        temp.unlink(missing_ok=True)
        raise


def _inside_home(target: Path) -> bool:
    """Whether `target` lands in a PromptLooper home or a folder below one."""
    folder = target.parent.resolve()
    return any(Settings(home=home).db_path.is_file() for home in (folder, *folder.parents))
