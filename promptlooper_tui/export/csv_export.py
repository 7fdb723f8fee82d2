"""`--format csv`: every run of the sweep, one row each, streamed (see `runs.run_rows`)."""

from __future__ import annotations

import contextlib
import csv
import json
from typing import Any, TextIO

from .runs import run_rows, scorer_names
from .source import ExportJob

#: Run fields that hold JSON objects; CSV cells get them JSON-encoded.
_JSON_FIELDS = ("config", "input")


async def write_csv(job: ExportJob, out: TextIO) -> None:
    """Write a header, then one row per run: the `run_rows` fields, with config and input
    JSON-encoded and, after config, a `param.<name>` column per swept parameter. Empty cells
    mean no value (a failed run has no output and no scores). The header comes from the first
    run, so a sweep without runs gives an empty file (the dispatcher refuses those first)."""
    swept = list(job.spec.parameter_space())
    scorers = await scorer_names(job)
    writer = csv.writer(out, lineterminator="\n")
    header_written = False
    rows = run_rows(job, scorers)
    async with contextlib.aclosing(rows):
        async for run in rows:
            record = _flatten(run, swept)
            if not header_written:
                writer.writerow(record)
                header_written = True
            writer.writerow(record.values())


def _flatten(run: dict[str, Any], swept: list[str]) -> dict[str, Any]:
    record: dict[str, Any] = {}
    for field, value in run.items():
        record[field] = _cell(value, json_encode=field in _JSON_FIELDS)
        if field == "config":
            record |= {f"param.{name}": _cell(run["config"].get(name)) for name in swept}
    return record


def _cell(value: Any, *, json_encode: bool = False) -> Any:
    if value is None:
        return ""
    if json_encode or isinstance(value, dict | list | bool):
        return json.dumps(value, ensure_ascii=False)
    return value
