"""`--format yaml`: the best config as YAML, the same data as the JSON export."""

from __future__ import annotations

from typing import TextIO

import yaml

from .best import best_config
from .source import ExportJob


async def write_yaml(job: ExportJob, out: TextIO) -> None:
    """Write the sweep's best config (see `best_config`); `yaml.safe_load` gives it back."""
    yaml.safe_dump(await best_config(job), out, sort_keys=False, allow_unicode=True)
