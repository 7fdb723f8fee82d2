"""`POST /api/sweeps/{id}/evolve-apply` and the MCP tool `evolve_apply`: an evolve sweep's
winner stored as a new version of its experiment, over real HTTP on 127.0.0.1; no file is
ever written for a remote caller, and what it cannot apply is a clear 4xx."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from promptlooper_tui.workbench import SweepOverrides, Workbench

from .conftest import RunningApi
from .test_hostile_api import BIG, _validator, assert_error
from .test_mcp import http_client, mcp_http

SAMPLES = Path(__file__).resolve().parents[2] / "sample_experiments"
NAME = "evolve-release-notes"


async def evolve_sweep(wb: Workbench) -> str:
    """A new sweep of the sample evolve experiment (stored from its file), not yet started."""
    imported = await wb.import_file(SAMPLES / "evolve.yaml")
    return await wb.create_sweep(imported.id, SweepOverrides())


async def winner(wb: Workbench, sweep_id: str) -> str:
    board = await wb.ranking(NAME, top=1, sweep=sweep_id)
    return str(board.entries[0].config["prompt"])


async def test_the_winner_becomes_a_new_version_and_no_file(api: RunningApi) -> None:
    samples_before = sorted(SAMPLES.iterdir())
    sweep_id = await evolve_sweep(api.wb)
    url = f"/api/sweeps/{sweep_id}/evolve-apply"

    not_run = await api.client.post(url)
    assert_error(not_run, (400,), "no completed runs")
    task = await api.wb.start_sweep(sweep_id)
    await api.wb.pause_sweep(sweep_id)
    assert (await api.wb.get_sweep(sweep_id)).status == "paused"
    assert_error(await api.client.post(url), (409,), "still paused")
    await api.wb.resume_paused_sweep(sweep_id)
    assert await task == "completed"

    response = await api.client.post(url)

    assert response.status_code == 200, response.text
    body = response.json()
    prompt = await winner(api.wb, sweep_id)
    assert body["applied"] is True and body["prompt"] == prompt and body["version"] == 2
    assert body["file"] is None and sorted(SAMPLES.iterdir()) == samples_before
    document = yaml.safe_load(body["text"])
    assert document["prompts"][prompt] == body["template"]
    assert document["parameters"]["prompt"][0] == prompt
    assert "  generations: 4       # rounds of proposals after the prompts above" in body["text"]
    stored = (await api.client.get(f"/api/experiments/{NAME}")).json()
    assert stored["version"] == 2 and stored["spec_yaml"] == body["text"]
    # Its dataset file still resolves where the original's did.
    assert stored["source_file"] == str(SAMPLES / "evolve.yaml")
    openapi = (await api.client.get("/api/openapi.json")).json()
    declared = openapi["paths"]["/api/sweeps/{sweep}/evolve-apply"]["post"]["responses"]["200"]
    _validator(openapi, declared["content"]["application/json"]["schema"]).validate(body)

    again = await api.client.post(url)
    assert again.status_code == 200 and again.json()["version"] == 2, "nothing new to store"


@pytest.mark.parametrize(
    ("sweep", "statuses", "words"),
    [
        ("sw_unknown", (404,), "no sweep (or experiment)"),
        ("x" * 4000, (404, 414, 431), ""),
        (BIG, (404,), "no sweep"),
        ("%00", (404,), "no sweep"),
        ("..%2F..%2Fetc%2Fpasswd", (404,), ""),
        ("' OR 1=1 --", (404,), "no sweep"),
        ("\u00fcber", (404,), "no sweep"),
    ],
)
async def test_ids_it_cannot_apply_are_4xx_json(
    api: RunningApi, sweep: str, statuses: tuple[int, ...], words: str
) -> None:
    response = await api.client.post(f"/api/sweeps/{sweep}/evolve-apply")

    assert_error(response, statuses, words)


async def test_a_sweep_of_another_strategy_is_400(api: RunningApi) -> None:
    imported = await api.wb.import_file(SAMPLES / "quickstart.yaml")
    sweep_id = await api.wb.create_sweep(imported.id, SweepOverrides())
    await api.wb.run_sweep(sweep_id)

    response = await api.client.post(f"/api/sweeps/{sweep_id}/evolve-apply")

    assert_error(response, (400,), "is a grid sweep, not an evolve sweep")
    wrong_method = await api.client.get(f"/api/sweeps/{sweep_id}/evolve-apply")
    assert wrong_method.status_code == 405


async def test_the_mcp_tool_stores_the_version_and_takes_no_path(workbench: Workbench) -> None:
    sweep_id = await evolve_sweep(workbench)
    await workbench.run_sweep(sweep_id)
    quickstart = await workbench.import_file(SAMPLES / "quickstart.yaml")
    grid_id = await workbench.create_sweep(quickstart.id, SweepOverrides())

    async with mcp_http(workbench) as url, http_client(url) as client:
        tools = {tool.name: tool for tool in (await client.list_tools()).tools}
        schema: dict[str, Any] = tools["evolve_apply"].input_schema
        assert set(schema["properties"]) == {"sweep"}, "a remote caller names no file"
        applied = await client.call_tool("evolve_apply", {"sweep": sweep_id})
        refused = await client.call_tool("evolve_apply", {"sweep": grid_id})
        unknown = await client.call_tool("evolve_apply", {"sweep": "sw_" + "9" * 64})

    assert not applied.is_error, applied.content
    result = applied.structured_content
    assert result is not None
    assert result["applied"] is True and result["file"] is None and result["version"] == 2
    assert result["prompt"] == await winner(workbench, sweep_id)
    assert (await workbench.get_experiment(NAME)).spec_yaml == result["text"]
    for failed, words in ((refused, "not an evolve sweep"), (unknown, "not found: no sweep")):
        text = failed.content[0].text  # type: ignore[union-attr]
        assert failed.is_error and words in text, text
