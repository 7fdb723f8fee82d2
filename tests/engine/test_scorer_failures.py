"""Scorer failures are visible (real-clients finding 2): a scorer that errors on a run is
recorded as such and counted in the summary, `run --json`, the status object and the
leaderboard, which also says which scorers its scores include. A sweep whose runs all failed
says why; a model without a price is "unpriced", never $0; a person's rating replaces their
earlier one and may not pass for an automatic scorer."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest

from promptlooper_tui.cli.output import print_leaderboard, print_summary
from promptlooper_tui.domain.errors import BadInput
from promptlooper_tui.domain.records import ScorerFailures
from promptlooper_tui.settings import Settings
from promptlooper_tui.simulated.server import RunningSimulator
from promptlooper_tui.workbench import SweepOverrides, Workbench

from ..conftest import BASE_EXPERIMENT, experiment_yaml
from ..helpers import cli
from ..server.conftest import running_api

#: Keyword scorers whose item field is not a list of terms on some items: they fail there, on
#: items 1 and 2 (picky) and on every item (broken).
PICKY = {"type": "keyword", "name": "picky", "required_present_from": "must"}
BROKEN = {"type": "keyword", "name": "broken", "required_present_from": "nowhere"}
DATASET = [
    {**item, "must": ["Settings"] if index == 0 else {"not": "terms"}, "nowhere": {"x": 1}}
    for index, item in enumerate(BASE_EXPERIMENT["dataset"])
]


async def run(wb: Workbench, text: str, **overrides: Any) -> str:
    imported = await wb.import_text(text)
    sweep_id = await wb.create_sweep(imported.id, SweepOverrides(**overrides))
    await wb.run_sweep(sweep_id)
    return sweep_id


def with_scorers(*extra: dict[str, Any], **changes: Any) -> str:
    return experiment_yaml(
        scorers=[*BASE_EXPERIMENT["scorers"], *extra], dataset=DATASET, **changes
    )


async def test_a_failing_scorer_is_counted_everywhere(
    workbench: Workbench, settings: Settings
) -> None:
    sweep_id = await run(workbench, with_scorers(PICKY, BROKEN))
    summary = await workbench.sweep_summary(sweep_id)
    # 4 configs: picky fails on items 1 and 2, broken on all 3.
    assert summary.scorer_failures == {
        "picky": ScorerFailures(failed=8, runs=12),
        "broken": ScorerFailures(failed=12, runs=12),
    }
    run_detail = await workbench.get_run((await workbench.list_runs(limit=1)).items[0].id)
    broken = next(s for s in run_detail.scores if s.scorer == "broken")
    assert broken.value is None and "nowhere" in (broken.error or "")

    board = await workbench.ranking("support")
    assert board.scorer_failures == summary.scorer_failures
    # The scores include what scored at least once; `broken` never did.
    assert board.scorers == ["keyword", "format:length", "picky"]

    lines = _printed(print_leaderboard, board)
    assert "broken failed on 12/12 runs" in lines
    assert "picky failed on 8/12 runs" in lines
    assert lines.startswith("Ranked: v1, 1 sweep, 12 runs; scores include keyword, ")
    assert "broken failed on 12/12 runs" in _printed(print_summary, summary)

    as_json = json.loads(cli(settings.home, "sweeps", "show", sweep_id, "--json").stdout)
    assert as_json["scorer_failures"]["broken"] == {"failed": 12, "runs": 12}
    async with running_api(workbench) as api:
        status = (await api.client.get(f"/api/sweeps/{sweep_id}")).json()
        assert status["scorer_failures"]["picky"] == {"failed": 8, "runs": 12}
        board_json = (await api.client.get("/api/experiments/support/leaderboard")).json()
        assert board_json["scorer_failures"]["broken"] == {"failed": 12, "runs": 12}
        assert board_json["scorers"] == ["keyword", "format:length", "picky"]


async def test_a_sweep_whose_runs_all_failed_says_why(
    workbench: Workbench, settings: Settings
) -> None:
    # The endpoint refuses a temperature that is not a number (HTTP 400, not retried).
    text = experiment_yaml(parameters={"model": ["small-model"], "temperature": ["hot"]})
    sweep_id = await run(workbench, text)
    summary = await workbench.sweep_summary(sweep_id)
    assert summary.runs.completed == 0 and summary.runs.failed > 0
    assert summary.most_common_error is not None
    assert "temperature" in summary.most_common_error
    assert f"most common error: {summary.most_common_error}" in _printed(print_summary, summary)
    as_json = json.loads(cli(settings.home, "sweeps", "show", sweep_id, "--json").stdout)
    assert as_json["most_common_error"] == summary.most_common_error


async def test_a_model_without_a_price_is_unpriced_and_a_zero_price_is_free(
    workbench: Workbench, sim: RunningSimulator, settings: Settings
) -> None:
    await workbench.add_endpoint("priced", sim.base_url, pricing={"small-model": (0.0, 0.0)})
    sweep_id = await run(workbench, experiment_yaml(endpoint="priced"))
    summary = await workbench.sweep_summary(sweep_id)
    assert summary.cost is None and summary.unpriced_models == ["large-model"]
    by_model = {e.config["model"]: e.cost for e in summary.leaderboard}
    assert by_model["small-model"] == 0.0 and by_model["large-model"] is None
    board = await workbench.ranking("support")
    assert board.unpriced_models == ["large-model"]
    assert (await workbench.get_sweep(sweep_id)).cost is None
    printed = _printed(print_summary, summary)
    assert "cost unpriced" in printed and "no price for: large-model" in printed
    assert " 0.0000 " in printed  # the free model, shown as free
    as_json = json.loads(cli(settings.home, "leaderboard", "support", "--json").stdout)
    assert as_json["unpriced_models"] == ["large-model"]
    assert {e["config"]["model"]: e["cost"] for e in as_json["entries"]} == by_model
    listed = cli(settings.home, "sweeps", "list").stdout
    assert "unpriced" in listed


async def test_a_new_rating_replaces_the_earlier_one(
    workbench: Workbench, settings: Settings
) -> None:
    sweep_id = await run(workbench, experiment_yaml(scorers=[BASE_EXPERIMENT["scorers"][1]]))
    run_id = (await workbench.list_runs(sweep=sweep_id, limit=1)).items[0].id
    automatic = (await workbench.get_run(run_id)).score
    assert automatic is not None
    await workbench.add_score(run_id, 1.0)
    detail = await workbench.add_score(run_id, 0.0)
    humans = [s for s in detail.scores if s.kind == "human"]
    assert [s.value for s in humans] == [0.0]
    assert [s.value for s in detail.superseded_scores] == [1.0]
    assert detail.superseded_scores[0].superseded_at is not None
    assert detail.score == pytest.approx((automatic + 0.0) / 2)
    # Another person's rating counts beside it.
    other = await workbench.add_score(run_id, 0.5, scorer="alice")
    assert other.score == pytest.approx((automatic + 0.0 + 0.5) / 3)

    done = cli(settings.home, "score", run_id, "0.69")
    assert done.returncode == 0, done.stderr
    assert "replacing 0.000" in done.stdout and "0.6900000000000001" not in done.stdout
    assert f"run score {(automatic + 0.69 + 0.5) / 3:.3f}" in done.stdout

    with pytest.raises(BadInput, match="automatic scorer"):
        await workbench.add_score(run_id, 0.5, scorer="format:length")
    refused = cli(settings.home, "score", run_id, "0.5", "--scorer", "format:length")
    assert refused.returncode == 2 and "automatic scorer" in refused.stderr


def _printed(printer: Any, value: Any) -> str:
    out = io.StringIO()
    printer(value, out)
    return out.getvalue()
