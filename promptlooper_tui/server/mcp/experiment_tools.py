"""Tools for experiments: list, show, validate and store them (none spends anything)."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, Field

from ...domain.errors import ValidationError
from ...domain.records import ExperimentDetail, ExperimentRecord, ImportResult
from ..models import ValidationReport
from ..request_bounds import MAX_SQL_INT
from .arguments import ExperimentRef
from .registry import LOCAL_WRITE, READ_ONLY, ToolRegistry


class ExperimentList(BaseModel):
    experiments: list[ExperimentRecord]


def add_experiment_tools(tools: ToolRegistry) -> None:
    wb = tools.wb

    @tools.tool(READ_ONLY)
    async def list_experiments() -> ExperimentList:
        """List every experiment with its latest version, latest sweep and best score."""
        return ExperimentList(experiments=await wb().list_experiments())

    @tools.tool(READ_ONLY)
    async def get_experiment(
        experiment: ExperimentRef,
        version: Annotated[
            int | None, Field(ge=1, le=MAX_SQL_INT, description="default: latest")
        ] = None,
    ) -> ExperimentDetail:
        """Show one experiment: its spec (as JSON and as the YAML it was written in)."""
        return await wb().get_experiment(experiment, version=version)

    @tools.tool(READ_ONLY)
    async def validate_experiment(
        yaml: Annotated[str, Field(description="the experiment file's YAML text")],
    ) -> ValidationReport:
        """Check experiment YAML without storing it. `ok` false lists every problem with its
        field path, line and message; fix them all and validate again."""
        try:
            return ValidationReport.of(await wb().validate_text(yaml, source="<mcp>"))
        except ValidationError as exc:
            return ValidationReport.failed(exc.issues)

    @tools.tool(LOCAL_WRITE)
    async def create_experiment(
        yaml: Annotated[str, Field(description="the experiment file's YAML text")],
    ) -> ImportResult:
        """Store an experiment from YAML. Re-sending a known name with changed content makes a
        new version (`created` says whether anything changed). Spends nothing."""
        return await wb().import_text(yaml, source="<mcp>")
