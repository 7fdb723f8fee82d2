"""The MCP resources: the experiment file format (a JSON Schema), the shipped samples, and each
stored experiment's spec and latest report."""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from mcp.server import MCPServer
from mcp.server.mcpserver.exceptions import ResourceError

from ...domain.errors import PromptLooperError
from ...domain.experiment_schema import experiment_json_schema
from ...resources import sample_files
from .registry import ToolRegistry, describe_error, export_text

#: The experiment file format (a JSON Schema) as an MCP resource.
EXPERIMENT_SCHEMA_URI = "promptlooper://schema/experiment"


def add_resources(tools: ToolRegistry) -> None:
    server, wb = tools.server, tools.wb

    @server.resource(
        EXPERIMENT_SCHEMA_URI,
        name="experiment-schema",
        title="Experiment file format",
        description="The experiment file format as a JSON Schema, every field described. "
        "Experiment YAML (create_experiment, validate_experiment) must match it; the samples "
        "(promptlooper://samples/...) are complete examples.",
        mime_type="application/schema+json",
    )
    def experiment_schema() -> str:
        return json.dumps(experiment_json_schema(), indent=1)

    for sample in sample_files():
        _add_sample(server, sample)

    @server.resource(
        "promptlooper://experiments/{experiment}",
        name="experiment",
        description="An experiment's latest spec, as the YAML it was written in.",
        mime_type="application/yaml",
    )
    async def experiment_spec(experiment: str) -> str:
        try:
            return (await wb().get_experiment(experiment)).spec_yaml
        except PromptLooperError as exc:
            raise ResourceError(describe_error(exc)) from None

    @server.resource(
        "promptlooper://experiments/{experiment}/report",
        name="report",
        description="A Markdown report of the experiment's latest sweep.",
        mime_type="text/markdown",
    )
    async def latest_report(experiment: str) -> str:
        try:
            return await export_text(wb(), experiment, "report")
        except PromptLooperError as exc:
            raise ResourceError(describe_error(exc)) from None


def _add_sample(server: MCPServer, path: Path) -> None:
    """`path`, a shipped sample, as the resource promptlooper://samples/NAME."""
    if path.suffix == ".yaml":
        about = yaml.safe_load(path.read_text()).get("description", "")
        description = f"Sample experiment (YAML, ready for create_experiment): {about}"
        mime = "application/yaml"
    else:
        description = (
            "A sample experiment's dataset file; experiments sent over MCP read dataset "
            "files only inside the server's data folder, so inline its rows or copy it there."
        )
        mime = "application/jsonl" if path.suffix == ".jsonl" else "text/csv"

    def read() -> str:
        return path.read_text()

    server.resource(
        f"promptlooper://samples/{path.name}",
        name=f"sample-{path.stem}",
        description=description,
        mime_type=mime,
    )(read)
