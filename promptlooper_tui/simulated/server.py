"""Running the simulated endpoint: in the current event loop, until signalled, or as a process."""

from __future__ import annotations

import asyncio
import contextlib
import queue
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Iterable, Iterator
from dataclasses import dataclass

from promptlooper_tui.asgi import serve_app
from promptlooper_tui.signals import on_stop_signals

from .app import create_app
from .options import DEFAULT_OPTIONS, SimulatorOptions
from .state import SimulatorState

#: What `run_simulated_endpoint` prints on stderr, before the base URL, once it accepts calls.
_ANNOUNCEMENT = "Simulated endpoint on "


@dataclass(frozen=True)
class RunningSimulator:
    """A simulated endpoint listening on host:port."""

    host: str
    port: int
    state: SimulatorState

    @property
    def base_url(self) -> str:
        """The OpenAI base URL, e.g. http://127.0.0.1:8123/v1."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/v1"


@contextlib.asynccontextmanager
async def simulated_endpoint(
    options: SimulatorOptions = DEFAULT_OPTIONS, host: str = "127.0.0.1", port: int = 0
) -> AsyncIterator[RunningSimulator]:
    """Serve the simulated endpoint in the current event loop until the block exits.

    Port 0 picks a free port; the server is accepting connections when the block starts.
    """
    app = create_app(options)
    async with serve_app(app, host, port) as bound_port:
        yield RunningSimulator(host, bound_port, app.state.sim)


def run_simulated_endpoint(host: str, port: int, options: SimulatorOptions) -> None:
    """Serve until Ctrl-C or SIGTERM (blocking); announces the base URL on stderr."""
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve_until_signalled(host, port, options))


async def _serve_until_signalled(host: str, port: int, options: SimulatorOptions) -> None:
    stop = asyncio.Event()
    # Where handlers cannot be installed, Ctrl-C ends it via KeyboardInterrupt instead.
    with on_stop_signals(stop.set):
        async with simulated_endpoint(options, host, port) as running:
            print(_ANNOUNCEMENT + running.base_url, file=sys.stderr, flush=True)
            await stop.wait()


@contextlib.contextmanager
def simulated_endpoint_process(*flags: str, timeout: float = 20.0) -> Iterator[str]:
    """`promptlooper simulate-endpoint FLAGS` in its own process on a free port until the block
    exits; yields its base URL once it accepts connections.

    Its own process, so its CPU is not the caller's (benchmarks) and it outlives a killed
    client (drills). Raises RuntimeError, with what it printed, if it has not started within
    `timeout` seconds or exits first.
    """
    process = subprocess.Popen(
        [sys.executable, "-m", "promptlooper_tui", "simulate-endpoint", "--port", "0", *flags],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        yield _announced_base_url(process, timeout)
    finally:
        process.terminate()
        process.wait(timeout=10)


def _announced_base_url(process: subprocess.Popen[str], timeout: float) -> str:
    lines: queue.Queue[str] = queue.Queue()
    assert process.stderr is not None
    # A thread reads stderr to its end, so a chatty server never blocks on a full pipe.
    threading.Thread(target=_forward_lines, args=(process.stderr, lines), daemon=True).start()
    deadline = time.monotonic() + timeout
    printed: list[str] = []
    while True:
        try:
            line = lines.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            problem = f"did not start within {timeout:g} s"
            break
        if not line:
            problem = f"exited with status {process.wait()}"
            break
        if line.startswith(_ANNOUNCEMENT):
            return line.removeprefix(_ANNOUNCEMENT).strip()
        printed.append(line)
    raise RuntimeError(f"the simulated endpoint {problem}: {''.join(printed)!r}")


def _forward_lines(stream: Iterable[str], lines: queue.Queue[str]) -> None:
    """Put each line of `stream` into `lines`, then "" at its end."""
    for line in stream:
        lines.put(line)
    lines.put("")
