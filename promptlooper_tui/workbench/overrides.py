"""Per-sweep changes to an experiment's `sweep:` settings."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..domain.errors import BadInput
from ..domain.experiment import SweepSettings


class SweepOverrides(BaseModel):
    """Per-sweep changes to the experiment's `sweep:` settings (CLI flags, API body)."""

    model_config = ConfigDict(extra="forbid")

    strategy: str | None = None
    samples: int | None = Field(default=None, ge=1)
    repeats: int | None = Field(default=None, ge=1)
    concurrency: int | None = Field(default=None, ge=1, le=1024)
    max_tokens: int | None = Field(default=None, ge=1)
    min_effect: float | None = Field(default=None, ge=0, lt=1)
    max_runs: int | None = Field(default=None, ge=1)
    seed: int | None = None
    #: evolve: rounds of proposals, templates per round, and the share of items held out.
    generations: int | None = Field(default=None, ge=1, le=50)
    proposals: int | None = Field(default=None, ge=1, le=20)
    holdout: float | None = Field(default=None, ge=0, le=0.8)
    #: evolve: the proposer's model; the file's proposer endpoint and params are kept.
    proposer_model: str | None = Field(default=None, min_length=1)
    no_cache: bool = False

    def apply(self, base: SweepSettings) -> SweepSettings:
        update: dict[str, Any] = {
            "strategy": self.strategy,
            "samples": self.samples,
            "repeats": self.repeats,
            "max_concurrency": self.concurrency,
            "max_tokens": self.max_tokens,
            "min_effect": self.min_effect,
            "max_runs": self.max_runs,
            "seed": self.seed,
            "generations": self.generations,
            "proposals": self.proposals,
            "holdout": self.holdout,
        }
        merged = base.model_dump() | {k: v for k, v in update.items() if v is not None}
        if self.proposer_model is not None:
            merged["proposer"] = (merged.get("proposer") or {}) | {"model": self.proposer_model}
        try:
            settings = SweepSettings.model_validate(merged)
        except ValidationError as exc:
            raise BadInput(f"invalid sweep settings: {_problems(exc)}") from None
        if settings.strategy in ("random", "guided") and settings.samples is None:
            raise BadInput(
                f"strategy {settings.strategy!r} needs a number of samples (--samples N)"
            )
        return settings


def _problems(exc: ValidationError) -> str:
    """Each problem as `field: message`, without pydantic's error codes and links."""
    problems = []
    for error in exc.errors():
        where = ".".join(str(part) for part in error["loc"])
        message = str(error["msg"]).removeprefix("Value error, ")
        problems.append(f"{where}: {message}" if where else message)
    return "; ".join(problems)
