"""Per-sweep changes to an experiment's `sweep:` settings."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

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
    no_cache: bool = False

    def apply(self, base: SweepSettings) -> SweepSettings:
        update = {
            "strategy": self.strategy,
            "samples": self.samples,
            "repeats": self.repeats,
            "max_concurrency": self.concurrency,
            "max_tokens": self.max_tokens,
            "min_effect": self.min_effect,
            "max_runs": self.max_runs,
            "seed": self.seed,
        }
        merged = base.model_dump() | {k: v for k, v in update.items() if v is not None}
        try:
            settings = SweepSettings.model_validate(merged)
        except Exception as exc:
            raise BadInput(f"invalid sweep settings: {exc}") from None
        if settings.strategy in ("random", "guided") and settings.samples is None:
            raise BadInput(
                f"strategy {settings.strategy!r} needs a number of samples (--samples N)"
            )
        return settings
