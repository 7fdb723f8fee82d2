"""Running the simulated endpoint: inside the current event loop, or blocking until signalled."""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass

from promptlooper_tui.asgi import serve_app
from promptlooper_tui.signals import on_stop_signals

from .app import create_app
from .options import DEFAULT_OPTIONS, SimulatorOptions
from .state import SimulatorState


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
            print(f"Simulated endpoint on {running.base_url}", file=sys.stderr, flush=True)
            await stop.wait()
