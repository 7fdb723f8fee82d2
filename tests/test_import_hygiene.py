"""The core runs without the UI: nothing below the front-ends, nor the CLI and the daemon,
loads textual (it costs start-up time and would tie the engine to one front-end)."""

from __future__ import annotations

import subprocess
import sys

CHECK = """
import contextlib, pkgutil, sys
import promptlooper_tui.engine, promptlooper_tui.store, promptlooper_tui.domain
for package in (promptlooper_tui.engine, promptlooper_tui.store, promptlooper_tui.domain):
    for module in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
        __import__(module.name)
import promptlooper_tui.service, promptlooper_tui.server.http, promptlooper_tui.cli
with contextlib.suppress(SystemExit):
    promptlooper_tui.cli.main(["--help"])
loaded = sorted(name for name in sys.modules if name.split(".")[0] == "textual")
print("textual modules:", loaded)
sys.exit(1 if loaded else 0)
"""


def test_core_cli_and_daemon_do_not_import_textual() -> None:
    result = subprocess.run(
        [sys.executable, "-c", CHECK], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
