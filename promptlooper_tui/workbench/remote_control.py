"""Pause, resume and stop of a sweep that another process runs (DESIGN §10): this process asks
with a `sweep.control` event, which the event relay carries to the others, and the one running
the sweep obeys when its relay brings the event in."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Literal

from ..domain.events import Event
from ..store import sweeps as stored_sweeps
from ..store.timestamps import now_iso
from .services import Services

Action = Literal["pause", "resume", "stop"]

#: The events of the runner's process that answer each request: it did so, or the sweep ended.
_ENDED = frozenset({"sweep.stopped", "sweep.completed", "sweep.budget_exhausted"})
_ANSWERS: dict[str, frozenset[str]] = {
    "pause": _ENDED | {"sweep.paused"},
    "resume": _ENDED | {"sweep.resumed"},
    "stop": _ENDED,
}
#: The status a request moves the stored sweep to, from the one it must have now. A stop is
#: recorded by the runner alone, once its runs in flight are cancelled and its writes settled.
_ASKED_STATUS: dict[str, tuple[str, str]] = {
    "pause": ("running", "paused"),
    "resume": ("paused", "running"),
}
#: Most seconds a request waits for the runner's process to answer (it takes well under one
#: when that process is alive; one that is not leaves its sweep interrupted soon after).
ANSWER_WAIT_S = 10.0


class RemoteControl:
    """Built once per Workbench: obeys the requests other processes make of the sweeps this
    one runs (a filter on the bus, in the publisher's step), and makes requests of theirs."""

    def __init__(self, services: Services) -> None:
        self._services = services
        self._obeying: set[asyncio.Task[None]] = set()
        services.bus.subscribe(maxsize=1, accept=self._obey)

    async def ask(self, sweep_id: str, experiment_id: str, action: Action) -> None:
        """Ask the process running `sweep_id` to `action` it, and return once it has (or
        after `ANSWER_WAIT_S`). A pause or resume is recorded in the store at once, so every
        front-end reads the new status before the runner's process has even seen the request."""
        services = self._services
        answers = _ANSWERS[action]
        with services.bus.subscribe(
            accept=lambda e: e.sweep_id == sweep_id and e.type in answers and e.origin is not None
        ) as answered:
            if action in _ASKED_STATUS:
                was, status = _ASKED_STATUS[action]
                statement = stored_sweeps.asked_status_statement(sweep_id, was, status, now_iso())
                await services.db.write([statement])
            services.bus.publish(
                "sweep.control", experiment_id, sweep_id=sweep_id, data={"action": action}
            )
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(ANSWER_WAIT_S):
                    await answered.get()

    def _obey(self, event: Event) -> bool:
        if event.type != "sweep.control" or event.origin is None or event.sweep_id is None:
            return False
        runner = self._services.live.runners.get(event.sweep_id)
        action = event.data.get("action")
        if runner is None:
            return False
        if action == "stop":
            runner.stop()
        elif action in ("pause", "resume"):
            step = runner.pause() if action == "pause" else runner.resume()
            task = asyncio.get_running_loop().create_task(step, name=f"{action}-{event.sweep_id}")
            self._obeying.add(task)
            task.add_done_callback(self._obeying.discard)
        return False
