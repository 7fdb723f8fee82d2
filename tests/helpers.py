"""Helpers for tests that drive the real `promptlooper` command and real servers in subprocesses."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import shlex
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from .fixtures.cli_forks import ForkingCli


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


#: Forks `promptlooper` processes from a server that has imported the CLI once.
_FORKS = ForkingCli()


def cli(
    home: Path, *args: str, stdin: str | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """Run `promptlooper --home HOME ARGS...` as a user would, in a process of its own (forked
    from a server that has imported the CLI, see fixtures/cli_forks.py); the finished process."""
    argv = ["--home", str(home), *args]
    command = [sys.executable, "-m", "promptlooper_tui", *argv]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    forked = _FORKS.run(argv, stdin, env, timeout)
    if forked is not None:
        code, out, err = forked
        return subprocess.CompletedProcess(command, code, out, err)
    return subprocess.run(
        command, input=stdin, capture_output=True, text=True, timeout=timeout, env=env
    )


def cli_json(home: Path, *args: str) -> Any:
    done = cli(home, *args, "--json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def printed_command(text: str, word: str = "resume") -> str:
    """The one `promptlooper ... WORD ...` command line printed in `text` (a hint to paste)."""
    [line] = re.findall(rf"(promptlooper (?:--home \S+ )?{word}\b.*)$", text, re.MULTILINE)
    return line


def run_printed(command: str, *more: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run a printed `promptlooper ...` command as a person pasting it into a shell would."""
    words = shlex.split(command)
    assert words[0] == "promptlooper", command
    return subprocess.run(
        [sys.executable, "-m", "promptlooper_tui", *words[1:], *more],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


def wait_for_completed_runs(
    home: Path, count: int, process: subprocess.Popen[str], within: float = 60
) -> None:
    """Wait until the database in `home` holds `count` completed runs (read as another process
    reads it), failing early if `process`, the one making them, ends first."""
    db = home / "promptlooper.db"
    deadline = time.monotonic() + within
    while True:
        assert process.poll() is None, process.communicate()
        if db.exists():
            with (
                contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn,
                contextlib.suppress(sqlite3.OperationalError),  # the schema is being created
            ):
                done = conn.execute("SELECT count(*) FROM runs WHERE status = 'completed'")
                if done.fetchone()[0] >= count:
                    return
        assert time.monotonic() < deadline, f"fewer than {count} runs after {within} s"
        time.sleep(0.02)


async def until(
    condition: Callable[[], Awaitable[object]],
    what: str,
    seconds: float,
    wake: asyncio.Event,
    recheck: float = 1.0,
) -> None:
    """Wait until `condition()` holds, looking again each time `wake` is set (events landing
    from other processes) and, for what no event announces, at least every `recheck` seconds;
    fail naming `what` after `seconds`."""
    deadline = time.monotonic() + seconds
    while not await condition():
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError(f"timed out after {seconds:g} s waiting for {what}")
        wake.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(wake.wait(), min(recheck, left))
