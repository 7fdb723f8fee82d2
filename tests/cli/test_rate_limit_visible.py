"""A user of the CLI sees what the endpoint does: 429s and waits on the progress line and in
`run --json`, truncated answers, finish reasons and usage warnings in `runs show`."""

from __future__ import annotations

import asyncio
import io
import json
from pathlib import Path
from typing import Any

import yaml

from promptlooper_tui.cli.progress import SweepProgress
from promptlooper_tui.engine.events import EventBus
from tests.fixtures.fake_llm import (
    FakeLLM,
    fake_llm_fixture,  # noqa: F401  (provides the `fake_llm` fixture)
    json_body,
    rate_limited,
)

from ..conftest import make_experiment
from ..helpers import cli, cli_json

SWEEP = "sw_test"


class Terminal(io.StringIO):
    """stderr as a terminal: every write is kept, and `wrote` wakes whoever waits for one."""

    def __init__(self, tty: bool = True) -> None:
        super().__init__()
        self._tty = tty
        self.lines: list[str] = []
        self.wrote = asyncio.Event()

    def isatty(self) -> bool:
        return self._tty

    def write(self, text: str) -> int:
        if text.strip():
            self.lines.append(text)
            self.wrote.set()
        return super().write(text)

    async def line(self, containing: str) -> str:
        """The first line drawn (from now on, or already) that contains `containing`."""
        seen = 0
        while True:
            for line in self.lines[seen:]:
                if containing in line:
                    return line
            seen = len(self.lines)
            self.wrote.clear()
            await asyncio.wait_for(self.wrote.wait(), 30)


def publish(bus: EventBus, type: str, **data: Any) -> None:
    bus.publish(type, "exp_test", sweep_id=SWEEP, data=data)


async def test_the_terminal_line_shows_429s_and_counts_the_wait_down_without_events() -> None:
    bus = EventBus()
    out = Terminal()
    progress = SweepProgress(bus, SWEEP, out=out)
    follow = asyncio.create_task(progress.follow())
    publish(bus, "sweep.started", expected_runs=6, finished_before=0)
    publish(bus, "sweep.rate_limited", responses_429=83, waiting_s=12.0, waiting_calls=3)
    first = await out.line("rate limited: 83 × 429, waiting 12 s (3 calls)")
    assert first.startswith("\r\x1b[2K") and "0/6 runs" in first
    # No event comes while the calls wait: the line still moves, so it never looks hung.
    ticked = await out.line("rate limited: 83 × 429, waiting 11 s (3 calls)")
    assert "0/6 runs" in ticked
    publish(bus, "sweep.rate_limited", responses_429=84, waiting_s=0.0, waiting_calls=0)
    done = await out.line("84 × 429")
    assert done.rstrip().endswith("rate limited: 84 × 429")
    follow.cancel()


async def test_plain_lines_show_the_429s_too() -> None:
    bus = EventBus()
    out = Terminal(tty=False)
    progress = SweepProgress(bus, SWEEP, out=out)
    follow = asyncio.create_task(progress.follow())
    publish(bus, "sweep.rate_limited", responses_429=2, waiting_s=1.5, waiting_calls=1)
    line = await out.line("rate limited")
    assert line == "0/0 runs · 0 cached · 0 failed · 0 tokens · ETA - · " + (
        "rate limited: 2 × 429, waiting 2 s\n"
    )
    follow.cancel()
    progress.finish()


def _fake_experiment(tmp_path: Path, fake_llm: FakeLLM, **changes: Any) -> Path:
    items = [{"input": {"question": f"Q{i}?", "article": "A."}} for i in range(2)]
    spec = make_experiment(
        endpoint={"base_url": fake_llm.base_url},
        parameters={"model": "fake-chat", "max_tokens": 60},
        scorers=[],
        **{"dataset": items, **changes},
    )
    path = tmp_path / "fake.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def test_run_json_and_the_progress_lines_carry_the_429s(tmp_path: Path, fake_llm: FakeLLM) -> None:
    fake_llm.script(rate_limited(0), rate_limited(0))
    path = _fake_experiment(tmp_path, fake_llm, sweep={"max_concurrency": 2})
    done = cli(tmp_path / "home", "run", str(path), "--json")
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["runs"]["completed"] == 2
    assert summary["rate_limits"] == {"responses_429": 2, "waiting_s": 0.0, "waiting_calls": 0}
    assert done.stderr.splitlines()[-1].endswith("rate limited: 2 × 429"), done.stderr
    status = cli_json(tmp_path / "home", "sweeps", "list")
    assert status[0]["id"] == summary["sweep_id"]


def test_runs_show_is_one_based_prints_the_item_as_json_and_what_the_endpoint_said(
    tmp_path: Path, fake_llm: FakeLLM
) -> None:
    answer = {
        "choices": [{"index": 0, "message": {"content": "Hel"}, "finish_reason": "length"}],
        "usage": {"prompt_tokens": -5, "completion_tokens": 2},
    }
    fake_llm.script(json_body(answer))
    item = {"input": {"question": "Q?", "article": "A."}}
    path = _fake_experiment(tmp_path, fake_llm, dataset=[item])
    home = tmp_path / "home"
    assert cli(home, "run", str(path)).returncode == 0
    (run,) = cli_json(home, "runs", "list")["items"]
    assert run["truncated"] is True
    done = cli(home, "runs", "show", run["id"])
    assert done.returncode == 0, done.stderr
    text = done.stdout
    assert f"run {run['id']} (completed, truncated: an answer hit max_tokens)" in text
    assert 'item 0 (0-based row of the dataset), repeat 0:\n{\n  "input": {\n' in text
    assert '"question": "Q?"' in text and "{'input'" not in text
    assert "== stage 1: reply · finish: length\n" in text
    assert "truncated: the answer stopped at max_tokens" in text
    assert "endpoint warning: the endpoint reported usage.prompt_tokens = -5" in text
    shown = cli_json(home, "runs", "show", run["id"])
    assert shown["truncated"] is True
    assert shown["stages"][0]["finish_reason"] == "length"
    assert shown["stages"][0]["warnings"][0].startswith("the endpoint reported usage.")
