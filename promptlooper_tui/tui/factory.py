"""Build the app: the CLI (`promptlooper`, `promptlooper tui`, `promptlooper demo`) and the tests
all call `make_app`, so what the tests drive is what users run."""

from __future__ import annotations

from pathlib import Path

from textual.screen import Screen

from ..domain.errors import BadInput
from ..resources import shipped_dir
from ..settings import Settings
from ..workbench import SweepOverrides, Workbench
from .app import PromptLooperApp, Startup

#: The demos' experiments (in the shipped samples), by name: `racing` (the default) races 24
#: configs over 60 items, so the leaderboard keeps changing; `evolve` has a proposer model
#: rewrite the prompts, generation after generation.
DEMO_EXPERIMENTS = {"racing": "racing.yaml", "evolve": "evolve.yaml"}
DEMO_EXPERIMENT = DEMO_EXPERIMENTS["racing"]
#: Each simulated call waits this long (with the experiment's 16 at once), so the sweep lasts
#: about half a minute: long enough to watch the ranking settle.
DEMO_LATENCY_MS = 800.0


def make_app(
    settings: Settings,
    *,
    user_theme_dir: Path | None = None,
    demo: bool = False,
    demo_latency_ms: float = DEMO_LATENCY_MS,
    demo_experiment: str = DEMO_EXPERIMENT,
) -> PromptLooperApp:
    """The app over the Workbench in `settings.home`. `user_theme_dir` adds the user's theme
    files (the CLI passes `themes.user_theme_dir()`). With `demo`, the app starts the built-in
    simulated endpoint with `demo_latency_ms` per call, imports the sample experiment
    `demo_experiment` (racing's by default), starts a sweep of it and opens the live monitor."""
    startup: Startup | None = None
    if demo:

        async def startup(workbench: Workbench) -> Screen[None]:
            return await start_demo(
                workbench, latency_ms=demo_latency_ms, experiment=demo_experiment
            )

    return PromptLooperApp(settings, startup=startup, user_theme_dir=user_theme_dir)


async def start_demo(
    workbench: Workbench, *, latency_ms: float, experiment: str = DEMO_EXPERIMENT
) -> Screen[None]:
    """Start a sweep of the sample experiment against the simulated endpoint; return its
    monitor screen. Calls are made afresh (no cache), so every demo has something to watch."""
    from ..simulated.options import SimulatorOptions
    from .screens.monitor import MonitorScreen

    samples = shipped_dir("sample_experiments")
    if samples is None or not (samples / experiment).is_file():
        raise BadInput(
            f"the demo needs the sample experiment {experiment}, which this install lacks; "
            "reinstall PromptLooper or run it from a source checkout"
        )
    # Started before anything resolves `simulated`, so the latency applies.
    await workbench.start_simulated_endpoint(SimulatorOptions(latency_ms=latency_ms))
    imported = await workbench.import_file(samples / experiment)
    overrides = SweepOverrides(no_cache=True)
    sweep_id = await workbench.create_sweep(imported.id, overrides)
    await workbench.start_sweep(sweep_id)
    return MonitorScreen(sweep_id)
