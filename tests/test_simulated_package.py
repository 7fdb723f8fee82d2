"""The simulated endpoint stands alone: it imports none of the engine, store, Workbench or UI,
and its options (what the CLI and the Workbench name) import no web server either."""

from __future__ import annotations

import json
import pkgutil
import subprocess
import sys

import pytest

from promptlooper_tui import simulated

#: Prints the sorted names of the loaded modules whose top package or first two parts are listed.
CHECK = """
import json, sys
for name in sys.argv[2:]:
    __import__(name)
watched = tuple(json.loads(sys.argv[1]))
print(json.dumps(sorted(
    name for name in sys.modules
    if name.split(".")[0] in watched or ".".join(name.split(".")[:2]) in watched
)))
"""
CORE = [
    "promptlooper_tui.engine",
    "promptlooper_tui.store",
    "promptlooper_tui.workbench",
    "promptlooper_tui.tui",
    "promptlooper_tui.server",
    "textual",
]
WEB = ["starlette", "uvicorn"]


def loaded_modules(imports: list[str], watched: list[str]) -> list[str]:
    result = subprocess.run(
        [sys.executable, "-c", CHECK, json.dumps(watched), *imports],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    loaded: list[str] = json.loads(result.stdout)
    return loaded


@pytest.mark.parametrize(
    "imports",
    [["promptlooper_tui.simulated"], ["promptlooper_tui.simulated.options"]],
)
def test_the_package_and_its_options_import_no_core_and_no_web_server(
    imports: list[str],
) -> None:
    assert loaded_modules(imports, CORE + WEB) == []


def test_the_whole_simulator_imports_none_of_the_core() -> None:
    everything = [
        f"{simulated.__name__}.{module.name}" for module in pkgutil.iter_modules(simulated.__path__)
    ]
    assert f"{simulated.__name__}.server" in everything
    assert loaded_modules(everything, CORE) == []
