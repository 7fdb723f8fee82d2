"""Quitting the app while a sweep runs stops the sweep; the terminal is then told how to
resume it, with a command that works when pasted."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import yaml

from promptlooper_tui.cli.app import unfinished_sweeps_note
from promptlooper_tui.settings import Settings
from promptlooper_tui.simulated.server import simulated_endpoint_process

from ..conftest import make_experiment
from ..helpers import cli_json, printed_command, run_printed
from .conftest import SIZE, AppMaker, open_home


async def test_quitting_with_a_running_sweep_says_how_to_resume_it(
    make_test_app: AppMaker, settings: Settings, tmp_path: Path
) -> None:
    # 120 calls of 40 ms, two at a time: the sweep is still running when the app quits.
    with simulated_endpoint_process("--latency-ms", "40") as base_url:
        path = tmp_path / "slow.yaml"
        spec = make_experiment(endpoint={"base_url": base_url}, sweep={"max_concurrency": 2})
        path.write_text(yaml.safe_dump(spec))
        app = make_test_app()
        async with app.run_test(size=SIZE) as pilot:
            await open_home(pilot, 0)
            imported = await app.workbench.import_file(path)
            sweep_id = await app.workbench.create_sweep(imported.id)
            await app.workbench.start_sweep(sweep_id)
            assert app.workbench.runner(sweep_id) is not None
            app.exit()

        note = unfinished_sweeps_note(app, settings)
        assert note.startswith(f"Sweep {sweep_id} of support stopped when the app quit"), note
        hint = printed_command(note)
        assert hint == f"promptlooper --home {settings.home} resume {sweep_id}"
        [sweep] = await asyncio.to_thread(cli_json, settings.home, "sweeps", "list")
        assert sweep["status"] == "stopped" and sweep["resumable"]
        resumed = await asyncio.to_thread(run_printed, hint, "--json")
        assert resumed.returncode == 0, resumed.stderr
        assert json.loads(resumed.stdout)["status"] == "completed"


async def test_quitting_with_nothing_running_says_nothing(
    make_test_app: AppMaker, settings: Settings
) -> None:
    app = make_test_app()
    async with app.run_test(size=SIZE) as pilot:
        await open_home(pilot, 0)
        app.exit()
    assert unfinished_sweeps_note(app, settings) == ""
