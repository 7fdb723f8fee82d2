""" "Best" is the experiment's best (DESIGN §5b): the leaderboard, the exports, the home's best
and every front-end rank each (config, item, repeat) of the experiment's latest version once,
over all its sweeps; `--sweep` ranks one. Real SQLite, the built-in simulated endpoint."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from promptlooper_tui.asgi import serve_app
from promptlooper_tui.domain.errors import BadInput
from promptlooper_tui.domain.records import RankedScope
from promptlooper_tui.server.mcp.app import create_mcp_app
from promptlooper_tui.settings import Settings
from promptlooper_tui.workbench import SweepOverrides, Workbench

from ..conftest import experiment_yaml
from ..helpers import cli
from ..server.conftest import AUTH, TOKEN, running_api

GRID = SweepOverrides()
#: One random config (seeded: not the grid's leader), on every item, twice.
ONE_CONFIG_TWICE = SweepOverrides(strategy="random", samples=1, seed=1, repeats=2)


async def sweep(wb: Workbench, overrides: SweepOverrides, text: str | None = None) -> str:
    imported = await wb.import_text(text or experiment_yaml())
    sweep_id = await wb.create_sweep(imported.id, overrides)
    summary = await wb.run_sweep(sweep_id)
    assert summary.status == "completed"
    return sweep_id


async def test_the_leaderboard_ranks_every_sweep_of_the_latest_version(
    workbench: Workbench,
) -> None:
    grid = await sweep(workbench, GRID)
    later = await sweep(workbench, ONE_CONFIG_TWICE)
    board = await workbench.ranking("support", top=None)
    # 4 configs x 3 items from the grid; the later sweep's repeat 0 is the same observation
    # as the grid's (it counts once), its repeat 1 is new: 3 more.
    assert board.ranked == RankedScope(version=1, sweeps=2, runs=15)
    assert board.configs == 4 and len(board.entries) == 4
    assert sorted(e.n for e in board.entries) == [3, 3, 3, 6]
    assert sum(e.n for e in board.entries) == board.ranked.runs
    assert board.entries[0].leader and board.entries[0].tied_with_leader
    assert not any(e.leader for e in board.entries[1:])
    assert board.scorers == ["keyword", "format:length"]

    one = await workbench.ranking("support", top=None, sweep=later)
    assert one.ranked == RankedScope(version=1, sweeps=1, runs=6, sweep=later)
    assert [e.n for e in one.entries] == [6]
    # The latest sweep's own leader is not the experiment's best.
    assert one.entries[0].config != board.entries[0].config
    assert one.entries[0].score < board.entries[0].score
    assert (await workbench.sweep_summary(later)).leaderboard == one.entries[:10]
    # A sweep id where the experiment is asked ranks that sweep (the monitor does this).
    assert (
        await workbench.leaderboard(grid)
        == (await workbench.ranking("support", sweep=grid)).entries
    )

    top = await workbench.ranking("support", top=2)
    assert len(top.entries) == 2 and top.configs == 4


async def test_an_observation_run_twice_counts_once_as_its_latest_run(
    workbench: Workbench,
) -> None:
    first = await sweep(workbench, GRID)
    page = await workbench.list_runs(sweep=first, limit=100)
    rated = page.items[0]
    await workbench.add_score(rated.id, 0.0)
    before = {
        json.dumps(e.config, sort_keys=True): e.score
        for e in await workbench.leaderboard("support", top=100)
    }
    second = await sweep(workbench, GRID)  # the same 12 observations, from the cache
    board = await workbench.ranking("support", top=None)
    assert board.ranked == RankedScope(version=1, sweeps=2, runs=12)
    assert {e.n for e in board.entries} == {3}
    # The later, unrated runs stand: the rating of the earlier run no longer counts, and the
    # board is the second sweep's.
    assert board.entries == (await workbench.ranking("support", top=None, sweep=second)).entries
    key = json.dumps(rated.config, sort_keys=True)
    after = {json.dumps(e.config, sort_keys=True): e.score for e in board.entries}
    assert after[key] > before[key]


async def test_a_new_version_starts_a_new_leaderboard(workbench: Workbench) -> None:
    v1_sweep = await sweep(workbench, GRID)
    [before] = await workbench.list_experiments()
    assert before.best_score == (await workbench.leaderboard("support"))[0].score
    await workbench.import_text(experiment_yaml(description="edited"))
    board = await workbench.ranking("support")
    assert board.ranked == RankedScope(version=2, sweeps=0, runs=0) and board.entries == []
    [after] = await workbench.list_experiments()
    assert after.version == 2 and after.best_score is None
    with pytest.raises(BadInput, match=r"v2, 0 sweeps, 0 runs.*--sweep"):
        await workbench.export("support", "json", io.StringIO())
    out = io.StringIO()
    await workbench.export("support", "json", out, sweep=v1_sweep)
    document = json.loads(out.getvalue())
    assert document["ranked"] == {"version": 1, "sweeps": 1, "runs": 12, "sweep": v1_sweep}


async def test_the_home_best_is_the_experiments_best(workbench: Workbench) -> None:
    await sweep(workbench, GRID)
    later = await sweep(workbench, ONE_CONFIG_TWICE)
    [record] = await workbench.list_experiments()
    assert record.latest_sweep_id == later
    board = await workbench.ranking("support")
    assert record.best_score == board.entries[0].score
    assert record.best_score != (await workbench.leaderboard("support", sweep=later))[0].score
    detail = await workbench.get_experiment("support")
    assert detail.best_score == record.best_score


async def test_every_front_end_names_what_it_ranked(
    workbench: Workbench, settings: Settings
) -> None:
    await sweep(workbench, GRID)
    later = await sweep(workbench, ONE_CONFIG_TWICE)
    board = await workbench.ranking("support")
    ranked = board.ranked.model_dump(mode="json")
    leader = board.entries[0].config
    home: Path = settings.home

    text = cli(home, "leaderboard", "support")
    assert text.returncode == 0, text.stderr
    assert text.stdout.startswith("Ranked: v1, 2 sweeps, 15 runs; scores include keyword")
    as_json = json.loads(cli(home, "leaderboard", "support", "--json").stdout)
    assert as_json["ranked"] == ranked and as_json["configs"] == 4
    assert as_json["entries"][0]["config"] == leader and as_json["entries"][0]["leader"]
    one = json.loads(cli(home, "leaderboard", "support", "--sweep", later, "--json").stdout)
    assert one["ranked"] == {"version": 1, "sweeps": 1, "runs": 6, "sweep": later}
    exported = json.loads(cli(home, "export", "support", "--format", "json").stdout)
    assert exported["ranked"] == ranked and exported["config"] == leader
    report = cli(home, "export", "support", "--format", "report").stdout
    assert "Ranked: v1, 2 sweeps, 15 runs." in report

    async with running_api(workbench) as api:
        response = await api.client.get("/api/experiments/support/leaderboard")
        assert response.status_code == 200 and response.json()["ranked"] == ranked
        response = await api.client.get(f"/api/experiments/support/leaderboard?sweep={later}")
        assert response.json()["ranked"]["sweep"] == later
        response = await api.client.get("/api/experiments/support/export/json")
        assert response.json()["ranked"] == ranked and response.json()["config"] == leader

    app = create_mcp_app(workbench, TOKEN)
    async with (
        serve_app(app) as port,
        httpx2.AsyncClient(headers=AUTH, timeout=30) as http,
        Client(streamable_http_client(f"http://127.0.0.1:{port}/mcp", http_client=http)) as client,
    ):
        mcp_board = await tool(client, "leaderboard", experiment="support")
        assert mcp_board["ranked"] == ranked
        best = await tool(client, "export_best_config", experiment="support")
        assert best["config"]["ranked"] == ranked and best["config"]["config"] == leader
        mcp_report = await tool(client, "sweep_report", experiment="support")
        assert "Ranked: v1, 2 sweeps, 15 runs." in mcp_report["markdown"]


async def tool(client: Client, name: str, **arguments: Any) -> dict[str, Any]:
    result = await client.call_tool(name, arguments)
    assert not result.is_error, result.content
    assert result.structured_content is not None
    return dict(result.structured_content)
