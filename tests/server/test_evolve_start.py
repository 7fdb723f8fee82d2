"""Starting an evolve sweep from the API and from MCP, on an experiment whose file names no
proposer: the request's proposer model, generations and proposals are what runs; without a
proposer, or with hostile values, the request is refused before a sweep is stored."""

from __future__ import annotations

import copy
from typing import Any

import yaml

from promptlooper_tui.workbench import Workbench
from tests.fixtures.evolve_sweep import EVOLVE_EXPERIMENT

from .conftest import RunningApi, wait_for_sweep
from .test_mcp import call, http_client, mcp_http, poll_until_finished


def without_proposer() -> str:
    """The fixture's evolve experiment as a plain grid file: evolve is asked for per sweep."""
    doc: dict[str, Any] = copy.deepcopy(EVOLVE_EXPERIMENT)
    doc["name"] = "notes-to-evolve"
    doc["sweep"] = {"strategy": "grid", "seed": 3, "items_per_round": 2}
    return yaml.safe_dump(doc, sort_keys=False)


async def test_the_api_starts_evolve_with_the_requests_proposer(api: RunningApi) -> None:
    client = api.client
    await client.post("/api/experiments", json={"yaml": without_proposer()})
    url = "/api/experiments/notes-to-evolve/sweeps"
    refused = await client.post(url, json={"strategy": "evolve"})
    assert refused.status_code == 400 and "proposer" in refused.json()["error"]
    for hostile in ({"proposer_model": "x" * 201}, {"generations": 51}, {"holdout": 0.9}):
        answer = await client.post(url, json={"strategy": "evolve", **hostile})
        assert answer.status_code == 422, (hostile, answer.text)
    assert (await client.get("/api/sweeps")).json() == []
    body = {"strategy": "evolve", "proposer_model": "large-model", "generations": 1}
    started = await client.post(url, json=body | {"proposals": 2})
    assert started.status_code == 202, started.text
    sweep_id = started.json()["sweep_id"]
    final = await wait_for_sweep(client, sweep_id)
    assert final["status"] == "completed"
    lineage = (await client.get(f"/api/sweeps/{sweep_id}/evolution")).json()
    assert [g["generation"] for g in lineage["generations"]] == [1]
    assert lineage["generations"][0]["model"] == "large-model"
    assert len(lineage["generations"][0]["proposals"]) == 2


async def test_an_agent_plans_and_starts_evolve(workbench: Workbench) -> None:
    await workbench.import_text(without_proposer())
    async with mcp_http(workbench) as url, http_client(url) as client:
        tools = {tool.name: tool for tool in (await client.list_tools()).tools}
        for name in ("plan_sweep", "start_sweep"):
            properties = tools[name].input_schema["properties"]
            assert {"generations", "proposals", "holdout", "proposer_model"} <= set(properties)
        arguments = {"experiment": "notes-to-evolve", "strategy": "evolve", "generations": 2}
        refused = await client.call_tool("plan_sweep", arguments)
        assert refused.is_error and "proposer" in refused.content[0].text  # type: ignore[union-attr]
        plan = await call(client, "plan_sweep", **arguments, proposer_model="large-model")
        assert plan["proposer_calls"] == 2 and plan["calls"] > plan["runs"]
        started = await call(client, "start_sweep", **arguments, proposer_model="large-model")
        final = await poll_until_finished(client, started["sweep_id"])
        assert final["status"] == "completed"
        lineage = await call(client, "sweep_evolution", sweep=started["sweep_id"])
    assert [g["generation"] for g in lineage["generations"]] == [1, 2]
    assert {g["model"] for g in lineage["generations"]} == {"large-model"}
