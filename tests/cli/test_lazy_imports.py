"""Each command imports only what it uses, because start-up time is what a user waits for: the
parser and `promptlooper --help` load no front-end, HTTP, server or Workbench module, a sweep
whose every call is cached starts no simulated endpoint and makes no HTTP client, and commands
that only read the store load no templates, experiment loader, check guard or sweep runner.
Checked in a fresh interpreter, as tests/test_import_hygiene.py checks that the core never loads
textual."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from ..helpers import cli

QUICKSTART = Path(__file__).resolve().parents[2] / "sample_experiments" / "quickstart.yaml"

#: Libraries that cost start-up time and that only some commands need.
HEAVY = ("textual", "httpx", "aiohttp", "starlette", "uvicorn", "mcp", "jsonschema", "cryptography")
#: What checking an experiment or running a sweep needs, and reading the store does not.
CHECK_AND_RUN = (
    "jinja2",
    "promptlooper_tui.engine.loader",
    "promptlooper_tui.engine.guard",
    "promptlooper_tui.engine.planning",
    "promptlooper_tui.engine.sweep",
    "promptlooper_tui.engine.run_execution",
    "promptlooper_tui.engine.run_recorder",
    "promptlooper_tui.engine.gateway",
)

HELP = """
import contextlib, io, json, sys
from promptlooper_tui.cli import main
from promptlooper_tui.cli.parser import build_parser
build_parser()
with contextlib.redirect_stdout(io.StringIO()) as text, contextlib.suppress(SystemExit):
    main(["--help"])
assert "usage: promptlooper" in text.getvalue()
print(json.dumps(sorted(sys.modules)))
"""

RUN = """
import contextlib, io, json, sys
from promptlooper_tui.cli import main
with contextlib.redirect_stdout(io.StringIO()) as text:
    code = main(["--home", sys.argv[1], "run", sys.argv[2], "--json"])
summary = json.loads(text.getvalue())
print(json.dumps({"code": code, "summary": summary, "modules": sorted(sys.modules)}))
"""

READ = """
import contextlib, io, json, sys
from promptlooper_tui.cli import main
with contextlib.redirect_stdout(io.StringIO()) as text:
    code = main(["--home", sys.argv[1], *sys.argv[2:], "--json"])
answer = json.loads(text.getvalue())
print(json.dumps({"code": code, "answer": answer, "modules": sorted(sys.modules)}))
"""


def python(script: str, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", script, *args], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def loaded(modules: list[str], names: tuple[str, ...]) -> list[str]:
    return sorted({m for m in modules if m in names or m.startswith(tuple(f"{n}." for n in names))})


def test_the_parser_and_help_load_no_heavy_library_and_no_workbench() -> None:
    modules = json.loads(python(HELP))
    assert loaded(modules, HEAVY) == []
    inner = ("workbench", "engine", "store", "tui", "server", "simulated", "export")
    assert loaded(modules, tuple(f"promptlooper_tui.{name}" for name in inner)) == []
    assert loaded(modules, ("pydantic",)) == []


def test_a_fully_cached_run_starts_no_endpoint_and_no_http_client(tmp_path: Path) -> None:
    first = cli(tmp_path, "run", str(QUICKSTART))
    assert first.returncode == 0, first.stderr

    again = json.loads(python(RUN, str(tmp_path), str(QUICKSTART)))

    assert again["code"] == 0
    calls = again["summary"]["calls"]
    assert calls["requested"] == calls["cache_hits"] > 0
    assert loaded(again["modules"], HEAVY) == []
    assert loaded(again["modules"], ("promptlooper_tui.simulated.server",)) == []


@pytest.mark.parametrize("command", [("runs", "list"), ("sweeps", "list")])
def test_reading_runs_and_sweeps_loads_no_templates_loader_or_runner(
    tmp_path: Path, command: tuple[str, str]
) -> None:
    finished = cli(tmp_path, "run", str(QUICKSTART))
    assert finished.returncode == 0, finished.stderr

    read = json.loads(python(READ, str(tmp_path), *command))

    assert read["code"] == 0
    assert read["answer"], "the finished quick start has runs and a sweep to list"
    assert loaded(read["modules"], CHECK_AND_RUN) == []
    assert loaded(read["modules"], HEAVY) == []
