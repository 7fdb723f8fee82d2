"""The MCP tool `sweep_evolution`, with the MCP SDK's own client over streamable HTTP: an evolve
sweep's lineage as the API's JSON, described for an agent, and plain errors for sweeps it
cannot show."""

from __future__ import annotations

from promptlooper_tui.workbench import Workbench
from tests.fixtures.evolve_sweep import EVOLVE_EXPERIMENT, run_evolve_sweep

from ..conftest import experiment_yaml
from .test_mcp import call, http_client, mcp_http


async def test_an_agent_reads_an_evolve_sweeps_lineage(workbench: Workbench) -> None:
    sweep_id = await run_evolve_sweep(workbench)
    async with mcp_http(workbench) as url, http_client(url) as client:
        tools = {tool.name: tool for tool in (await client.list_tools()).tools}
        tool = tools["sweep_evolution"]
        assert tool.annotations and tool.annotations.read_only_hint
        assert not tool.annotations.open_world_hint
        assert "rejected" in (tool.description or "") and tool.output_schema is not None
        assert tool.input_schema["required"] == ["sweep"]
        assert all(prop.get("description") for prop in tool.input_schema["properties"].values())

        lineage = await call(client, "sweep_evolution", sweep=sweep_id)
        assert lineage == (await workbench.evolution(sweep_id)).model_dump(mode="json")
        proposals = [p for g in lineage["generations"] for p in g["proposals"]]
        assert {p["status"] for p in proposals} == {"accepted", "rejected"}
        # The experiment's name stands for its latest sweep, as in every sweep tool.
        assert await call(client, "sweep_evolution", sweep=EVOLVE_EXPERIMENT["name"]) == lineage


async def test_sweeps_it_cannot_show_are_plain_errors(workbench: Workbench) -> None:
    imported = await workbench.import_text(experiment_yaml())
    grid_sweep = await workbench.create_sweep(imported.id)
    async with mcp_http(workbench) as url, http_client(url) as client:
        for arguments, words in [
            ({"sweep": grid_sweep}, f"sweep {grid_sweep} is a grid sweep, not an evolve sweep"),
            ({"sweep": "sw_0000000000"}, "not found: "),
            ({}, "invalid arguments for sweep_evolution:\n- sweep: "),
            ({"sweep": 7}, "invalid arguments for sweep_evolution:\n- sweep: "),
        ]:
            result = await client.call_tool("sweep_evolution", arguments)
            text = result.content[0].text  # type: ignore[union-attr]
            assert result.is_error and words in text, (arguments, text)
