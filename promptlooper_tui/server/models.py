"""Result shapes the HTTP API and the MCP tools share, beyond the Workbench's own records."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from ..domain.errors import Issue
from ..domain.records import Leaderboard, RankedScope
from ..engine.loader import LoadedExperiment


class Health(BaseModel):
    ok: bool
    version: str


class SweepStarted(BaseModel):
    """A sweep accepted for background running; poll its status with its id."""

    sweep_id: str
    status: str = "running"


class BestConfigDocument(BaseModel):
    """The JSON export: a sweep's leader, ready to deploy (`prompt` when prompts are swept)."""

    model_config = ConfigDict(extra="allow")

    experiment: str
    experiment_version: int
    sweep_id: str
    exported_at: str
    config: dict[str, Any]
    params: dict[str, Any]
    prompt: str | None = Field(
        None, description="the winning prompt's text, when prompts are swept"
    )
    pipeline: list[dict[str, Any]]
    score: float
    ci_low: float
    ci_high: float
    n: int
    ranked: RankedScope | None = Field(None, description="what was ranked to find the leader")


__all__ = ["BestConfigDocument", "Health", "IssueModel", "Leaderboard", "SweepStarted"]


class IssueModel(BaseModel):
    source: str = ""
    path: str = ""
    line: int | None = None
    message: str


class ValidationReport(BaseModel):
    """Whether an experiment is valid; when it is not, every problem with its path and line."""

    ok: bool
    name: str | None = None
    swept_parameters: list[str] = Field(default_factory=list)
    stages: int = 0
    items: int = 0
    scorers: int = 0
    issues: list[IssueModel] = Field(default_factory=list)

    @classmethod
    def of(cls, loaded: LoadedExperiment) -> ValidationReport:
        spec = loaded.spec
        return cls(
            ok=True,
            name=spec.name,
            swept_parameters=list(spec.parameter_space()),
            stages=len(spec.pipeline),
            items=len(spec.items),
            scorers=len(spec.scorers),
        )

    @classmethod
    def failed(cls, issues: list[Issue]) -> ValidationReport:
        return cls(ok=False, issues=[IssueModel(**issue.as_dict()) for issue in issues])  # type: ignore[arg-type]


class CacheCleared(BaseModel):
    removed: int
