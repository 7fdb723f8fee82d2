"""Read an experiment's dataset file (.jsonl, .json, .csv) within limits and, for remote
callers, only from inside the data folder (DESIGN §9).

A file is opened without blocking and must be a regular file: a FIFO or a device is refused
instead of hanging the reader or reading forever. For a remote caller the path must be
relative, without `..`, and lie inside the data folder once every symlink is followed; every
refusal reads the same whether or not the path exists, so it reveals nothing of the host.
"""

from __future__ import annotations

import csv
import json
import os
import stat
from pathlib import Path, PurePosixPath
from typing import Any

from .limits import Limits


class DatasetReadError(Exception):
    """A dataset file that cannot be used; the message says why and is safe to show."""


def read_dataset(
    name: str, *, base_dir: Path, confine_to: Path | None, limits: Limits
) -> list[dict[str, Any]]:
    """The rows of dataset file `name` (relative to `base_dir`, or inside `confine_to`)."""
    path = _confined(name, confine_to) if confine_to is not None else base_dir / name
    # A remote caller sees the name it gave; the person at the terminal, the file's path.
    shown = name if confine_to is not None else str(path)
    text = _read_text(path, shown, limits)
    rows = _parse(text, path.suffix.lower(), shown)
    if len(rows) > limits.dataset_rows:
        raise DatasetReadError(
            f"dataset file {shown!r} has {len(rows):,} rows; the limit is "
            f"{limits.dataset_rows:,} (PROMPTLOOPER_LIMIT_DATASET_ROWS)"
        )
    return rows


def _confined(name: str, data_dir: Path) -> Path:
    refused = DatasetReadError(
        f"dataset file {name!r} is not available: experiments sent over the API or MCP may "
        "read only files inside the daemon's data folder, named by a relative path without "
        "'..' (serve --data-dir)"
    )
    relative = PurePosixPath(name)
    if not name or "\x00" in name or relative.is_absolute() or ".." in relative.parts:
        raise refused
    if name.startswith("~") or "\\" in name:
        raise refused
    root = data_dir.resolve()
    try:
        resolved = (root / relative).resolve()
    except (OSError, RuntimeError):  # a symlink loop
        raise refused from None
    if not resolved.is_relative_to(root) or resolved == root:
        raise refused
    return resolved


def _read_text(path: Path, name: str, limits: Limits) -> str:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        raise DatasetReadError(f"dataset file not found: {name}") from None
    except OSError as exc:
        raise DatasetReadError(f"cannot read dataset file {name}: {exc.strerror}") from None
    with os.fdopen(fd, "rb") as file:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise DatasetReadError(f"dataset file {name!r} is not a regular file")
        if info.st_size > limits.dataset_bytes:
            raise DatasetReadError(_too_large(name, limits))
        data = file.read(limits.dataset_bytes + 1)
    if len(data) > limits.dataset_bytes:  # it grew while being read
        raise DatasetReadError(_too_large(name, limits))
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DatasetReadError(f"dataset file {name!r} is not UTF-8 text: {exc.reason}") from None


def _too_large(name: str, limits: Limits) -> str:
    return (
        f"dataset file {name!r} is larger than {limits.dataset_bytes:,} bytes "
        "(PROMPTLOOPER_LIMIT_DATASET_BYTES)"
    )


def _parse(text: str, suffix: str, name: str) -> list[dict[str, Any]]:
    if suffix == ".csv":
        try:
            return [dict(row) for row in csv.DictReader(text.splitlines())]
        except csv.Error as exc:
            raise DatasetReadError(f"{name}: invalid CSV: {exc}") from None
    if suffix == ".json":
        try:
            rows = json.loads(text, parse_constant=_no_constant)
        except (json.JSONDecodeError, RecursionError, ValueError) as exc:
            raise DatasetReadError(f"{name}: invalid JSON: {_json_problem(exc)}") from None
        if not isinstance(rows, list) or not all(isinstance(row, dict) for row in rows):
            raise DatasetReadError(f"{name}: expected a JSON list of objects")
        return rows
    if suffix == ".jsonl":
        rows = []
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line, parse_constant=_no_constant)
            except (json.JSONDecodeError, RecursionError, ValueError) as exc:
                raise DatasetReadError(
                    f"{name}:{number}: invalid JSON: {_json_problem(exc)}"
                ) from None
            if not isinstance(row, dict):
                raise DatasetReadError(f"{name}:{number}: expected a JSON object per line")
            rows.append(row)
        return rows
    raise DatasetReadError(f"unsupported dataset file type {suffix!r}; use .jsonl, .json or .csv")


def _no_constant(value: str) -> Any:
    raise ValueError(f"{value} is not allowed: use a finite number")


def _json_problem(exc: Exception) -> str:
    if isinstance(exc, json.JSONDecodeError):
        return f"line {exc.lineno}: {exc.msg}"
    if isinstance(exc, RecursionError):
        return "nested too deeply"
    return str(exc)
