"""`--format json`: the best config as one JSON document."""

from __future__ import annotations

import json
from typing import TextIO

from .best import best_config
from .source import ExportJob


async def write_json(job: ExportJob, out: TextIO) -> None:
    """Write the sweep's best config (see `best_config`) as indented JSON."""
    out.write(json.dumps(await best_config(job), indent=2, ensure_ascii=False) + "\n")
