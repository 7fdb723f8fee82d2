"""How much work one experiment may ask for (DESIGN §9), each limit with a clear message.

Every limit has a default and an environment variable that changes it, read once per process:
`PROMPTLOOPER_LIMIT_<NAME>` (for example `PROMPTLOOPER_LIMIT_MAX_CONFIGS=500000`). They hold
for every front-end; the time and memory bound of a guarded check (`check_seconds`,
`check_memory_mb`) applies where experiments are checked in a worker process (the daemon, MCP
and the app's editor).
"""

from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import dataclass
from functools import cache
from typing import Any

from ..domain.errors import BadInput, Issue, ValidationError
from ..domain.experiment import CategoricalParameter, ExperimentSpec, SweepSettings
from .search_space import parameter_choices

_ENV_PREFIX = "PROMPTLOOPER_LIMIT_"


class TooExpensive(ValidationError):
    """An experiment asks for more work than a limit allows: one issue, "experiment too
    expensive to check: REASON" (exit 2, HTTP 422, an MCP tool error)."""

    def __init__(self, reason: str, *, source: str = "", line: int | None = None) -> None:
        self.reason = reason
        message = f"experiment too expensive to check: {reason}"
        super().__init__([Issue(message, line=line, source=source)])


@dataclass(frozen=True)
class Limits:
    """The bounds on one experiment; see the README's Security section."""

    #: Size of the experiment's YAML text, in bytes.
    experiment_bytes: int = 1_048_576
    #: YAML nodes after every alias is expanded (a "billion laughs" file fails here).
    yaml_nodes: int = 200_000
    #: Characters of scalar text after every alias is expanded.
    yaml_chars: int = 16_777_216
    #: Nesting depth of mappings and lists.
    yaml_depth: int = 64
    #: Largest integer anywhere in the file (2^53: exact in JSON everywhere).
    max_integer: int = 2**53
    #: Configs one sweep may plan (a grid's product, `samples`).
    max_configs: int = 100_000
    #: Runs one sweep may plan (configs x items x repeats).
    max_runs: int = 2_000_000
    #: Rows of the dataset, inline or from a file.
    dataset_rows: int = 100_000
    #: Size of a dataset file, in bytes.
    dataset_bytes: int = 67_108_864
    #: Wall time of one guarded check (parse, validate, trial renders), in seconds.
    check_seconds: float = 10.0
    #: Address space of the worker process that runs guarded checks, in MiB.
    check_memory_mb: int = 2048
    #: Sweeps a daemon or MCP server runs at once for its callers: one more is refused
    #: (HTTP 429) until one ends, so callers cannot starve the process that answers them.
    running_sweeps: int = 4

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> Limits:
        """Defaults, changed by `PROMPTLOOPER_LIMIT_<NAME>` variables; a bad value is an error."""
        environ = dict(os.environ if environ is None else environ)
        values: dict[str, Any] = {}
        for field in dataclasses.fields(cls):
            raw = environ.get(_ENV_PREFIX + field.name.upper())
            if raw is None:
                continue
            kind = float if field.type in ("float", float) else int
            try:
                value = kind(raw.replace("_", ""))
            except ValueError:
                value = None
            if value is None or not math.isfinite(value) or value <= 0:
                raise BadInput(
                    f"{_ENV_PREFIX}{field.name.upper()}={raw!r}: expected a positive number"
                )
            values[field.name] = value
        return cls(**values)


@cache
def default_limits() -> Limits:
    return Limits.from_env()


def planned_configs(spec: ExperimentSpec, settings: SweepSettings) -> int:
    """How many configs a sweep plans, by arithmetic (a 10^12 grid is never enumerated)."""
    space = spec.parameter_space()
    sizes = [len(parameter_choices(parameter)) for parameter in space.values()]
    grid = math.prod(sizes)
    finite = all(isinstance(p, CategoricalParameter) for p in space.values())
    if settings.strategy == "grid":
        return grid
    if settings.samples is None:
        return grid
    return min(settings.samples, grid) if finite else settings.samples


def check_sweep_size(
    spec: ExperimentSpec, settings: SweepSettings, limits: Limits | None = None
) -> None:
    """Raise TooExpensive when a sweep of `spec` would plan more configs or runs than allowed."""
    limits = limits or default_limits()
    configs = planned_configs(spec, settings)
    if configs > limits.max_configs:
        raise TooExpensive(
            f"the sweep has {_count(configs)} configs; the limit is {limits.max_configs:,} "
            f"({_ENV_PREFIX}MAX_CONFIGS)"
        )
    runs = configs * len(spec.items) * settings.repeats
    if runs > limits.max_runs:
        raise TooExpensive(
            f"the sweep has {_count(runs)} runs ({configs:,} configs × {len(spec.items):,} "
            f"items × {settings.repeats:,} repeats); the limit is {limits.max_runs:,} "
            f"({_ENV_PREFIX}MAX_RUNS)"
        )


def _count(number: int) -> str:
    """10^12 as '1,000,000,000,000', and astronomically large counts as '~10^40'."""
    return f"{number:,}" if number < 10**18 else f"~10^{len(str(number)) - 1}"
