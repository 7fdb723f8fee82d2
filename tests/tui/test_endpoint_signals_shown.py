"""The app shows what the endpoint did: the monitor's rate-limit counter (live and stored), and
the inspector's truncated runs, finish reasons and usage warnings."""

from __future__ import annotations

import json

from promptlooper_tui.tui.screens.inspector import RunInspectorScreen
from promptlooper_tui.tui.screens.monitor import MonitorScreen
from promptlooper_tui.workbench import SweepOverrides
from tests.fixtures.fake_llm import (
    FakeLLM,
    fake_llm_fixture,  # noqa: F401  (provides the `fake_llm` fixture)
    rate_limited,
)

from ..conftest import experiment_yaml
from .conftest import SIZE, AppMaker, screen_text, wait_until
from .sweep_data import open_over_home, sweep_experiment

WARNING = "the endpoint reported usage.prompt_tokens = -5, not a plausible token count"


async def test_the_inspector_shows_a_truncated_run_its_finish_reason_and_warnings(
    make_test_app: AppMaker,
) -> None:
    app = make_test_app()
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: app._workbench is not None, "the workbench")
        wb = app.workbench
        # The simulated endpoint stops at max_tokens with finish_reason "length".
        runs = await sweep_experiment(wb, parameters={"model": "small-model", "max_tokens": 2})
        run_id = runs.run_ids[0]
        await wb.db.execute(
            "UPDATE stage_results SET warnings = ? WHERE run_id = ?",
            (json.dumps([WARNING]), run_id),
        )
        screen = RunInspectorScreen(run_id)
        await open_over_home(pilot, screen)
        await wait_until(pilot, lambda: screen.run is not None, "the run")
        await pilot.pause()
        text = screen_text(app)
        assert "truncated (an answer hit max_tokens)" in text
        assert "Stage 1: reply" in text and "finish: length" in text
        assert "the answer stopped at max_tokens" in text
        assert "endpoint warning: the endpoint reported usage.prompt_tokens" in text


async def test_the_monitor_counts_429s_and_shows_the_wait(
    make_test_app: AppMaker, fake_llm: FakeLLM
) -> None:
    app = make_test_app()
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: app._workbench is not None, "the workbench")
        wb = app.workbench
        fake_llm.script(rate_limited(30))
        text = experiment_yaml(
            endpoint={"base_url": fake_llm.base_url},
            parameters={"model": "fake-chat", "max_tokens": 60},
            scorers=[],
        )
        imported = await wb.import_text(text)
        sweep_id = await wb.create_sweep(imported.id, SweepOverrides(concurrency=1))
        task = await wb.start_sweep(sweep_id)
        screen = MonitorScreen(sweep_id)
        await open_over_home(pilot, screen)
        await wait_until(
            pilot,
            lambda: screen.counts.rate_limits.waiting_calls == 1,
            "a call waiting on a 429",
        )
        await wait_until(pilot, lambda: "rate limited: 1 × 429, waiting" in screen_text(app), "it")
        await wb.stop_sweep(sweep_id)
        assert await task == "stopped"
        # Stopped here: the monitor reads the stored count.
        await wait_until(
            pilot,
            lambda: (
                "rate limited: 1 × 429" in screen_text(app) and "waiting" not in screen_text(app)
            ),
            "the stored count",
        )
