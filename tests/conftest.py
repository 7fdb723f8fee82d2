"""Fixtures shared by every layer's tests: a real home dir, a real database, real servers."""

from __future__ import annotations

import copy
import os
import sys
import tempfile
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from promptlooper_tui.settings import Settings
from promptlooper_tui.simulated.options import SimulatorOptions
from promptlooper_tui.simulated.server import RunningSimulator, simulated_endpoint
from promptlooper_tui.store.location import parse_database_url
from promptlooper_tui.workbench import Workbench, open_workbench


def _keep_bytecode() -> None:
    """The suite starts hundreds of Python processes (the CLI, servers, test workers). Where
    writing bytecode is turned off (PYTHONDONTWRITEBYTECODE), each would compile every module
    again and every worker would rewrite every test module: keep the bytecode in a folder of
    its own instead, outside the source tree (Python's writes there are atomic)."""
    if not sys.dont_write_bytecode:
        return
    prefix = str(Path(tempfile.gettempdir()) / f"promptlooper-tests-bytecode-{os.getuid()}")
    # Inherited by every process the tests start, xdist's workers included.
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    os.environ["PYTHONPYCACHEPREFIX"] = prefix
    sys.dont_write_bytecode = False
    sys.pycache_prefix = prefix


_keep_bytecode()

#: `pg_server` and `pg_url`: a real, throwaway PostgreSQL for the tests that need one.
pytest_plugins = ["tests.fixtures.postgres"]


def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """`-n auto` (pyproject's addopts): two workers a core, at most 8. Many tests spend their
    time waiting on processes, sockets and endpoint latency; a second worker uses it."""
    return min(8, 2 * len(os.sched_getaffinity(0)))


#: A small, valid experiment; tests change what they need with `make_experiment(**changes)`.
BASE_EXPERIMENT: dict[str, Any] = {
    "name": "support",
    "description": "test experiment",
    "endpoint": "simulated",
    "parameters": {
        "model": ["small-model", "large-model"],
        "temperature": [0.0, 0.8],
        "max_tokens": 60,
    },
    "pipeline": [
        {
            "name": "reply",
            "system": "You are a support agent.",
            "user": "Answer briefly using: {{ item.input.article }} "
            "Question: {{ item.input.question }}",
        }
    ],
    "dataset": [
        {
            "input": {
                "question": "How do I reset my password?",
                "article": "Open Settings, choose Security, press Reset.",
            },
            "keywords": ["Settings", "Security"],
        },
        {
            "input": {
                "question": "Can I export invoices?",
                "article": "Invoices live under Billing; press Export.",
            },
            "keywords": ["Billing", "Export"],
        },
        {
            "input": {
                "question": "How do I invite a teammate?",
                "article": "Go to Team and press Invite.",
            },
            "keywords": ["Team", "Invite"],
        },
    ],
    "scorers": [
        {"type": "keyword", "required_present_from": "keywords", "weight": 2},
        {"type": "format", "format": "length", "min_tokens": 3, "max_tokens": 80},
    ],
    "sweep": {"strategy": "grid", "seed": 1, "max_concurrency": 4},
}


def make_experiment(**changes: Any) -> dict[str, Any]:
    """BASE_EXPERIMENT with top-level keys replaced (and `sweep` merged)."""
    spec = copy.deepcopy(BASE_EXPERIMENT)
    sweep = changes.pop("sweep", None)
    spec.update(changes)
    if sweep:
        spec["sweep"] = {**spec["sweep"], **sweep}
    return spec


def experiment_yaml(**changes: Any) -> str:
    return yaml.safe_dump(make_experiment(**changes), sort_keys=False)


#: The suites that run on both backends (DESIGN §10): every test of theirs that uses the
#: `settings` fixture (a `workbench` among them) runs once on SQLite, once on PostgreSQL.
_BOTH_BACKENDS = ("store", "engine", "drills")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "sqlite_only(reason): reads the SQLite file itself; not run on PostgreSQL"
    )


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "backend" not in metafunc.fixturenames:
        return
    suite = metafunc.definition.path.relative_to(Path(__file__).parent).parts[0]
    if suite in _BOTH_BACKENDS and metafunc.definition.get_closest_marker("sqlite_only") is None:
        metafunc.parametrize("backend", ["sqlite", "postgresql"], indirect=True)


@pytest.fixture
def backend(request: pytest.FixtureRequest) -> str:
    """Which store the test's `settings` use (SQLite unless the suite runs on both)."""
    return str(getattr(request, "param", "sqlite"))


@pytest.fixture
def settings(
    tmp_path: Path, backend: str, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> Settings:
    if backend == "sqlite":
        return Settings(home=tmp_path / "home")
    url = request.getfixturevalue("pg_store_url")
    # The commands, daemons and MCP servers the test starts use the same database.
    monkeypatch.setenv("PROMPTLOOPER_DB", url)
    return Settings(home=tmp_path / "home", db=parse_database_url(url))


@pytest.fixture
async def workbench(settings: Settings) -> AsyncIterator[Workbench]:
    async with open_workbench(settings) as wb:
        yield wb


@pytest.fixture
async def sim() -> AsyncIterator[RunningSimulator]:
    async with simulated_endpoint(SimulatorOptions()) as running:
        yield running


@pytest.fixture
def write_experiment(tmp_path: Path) -> Callable[..., Path]:
    """Write an experiment file built from BASE_EXPERIMENT; returns its path."""

    def write(name: str = "experiment.yaml", **changes: Any) -> Path:
        path = tmp_path / name
        path.write_text(experiment_yaml(**changes))
        return path

    return write
