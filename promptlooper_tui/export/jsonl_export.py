"""`--format jsonl`: every run of the sweep as one JSON object per line, streamed."""

from __future__ import annotations

import contextlib
import json
from typing import TextIO

from .runs import run_rows, scorer_names
from .source import ExportJob


async def write_jsonl(job: ExportJob, out: TextIO) -> None:
    """Write one line per run with the `run_rows` fields (config and input as objects)."""
    rows = run_rows(job, await scorer_names(job))
    async with contextlib.aclosing(rows):
        async for run in rows:
            out.write(json.dumps(run, ensure_ascii=False) + "\n")
