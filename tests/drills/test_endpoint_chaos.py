"""Drill: a sweep of 300 runs against an endpoint that misbehaves at random (20% HTTP 500s,
bursts of 429 with Retry-After, 2% cut streams, 1% malformed JSON) completes; every failed run
says why; no call is tried more than 3 times (429s aside), counted at the server."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import yaml

from ..fixtures.fake_llm import Chaos, FakeLLM, fake_llm_fixture  # noqa: F401
from ..helpers import cli, cli_json

ITEMS = 100
TEMPERATURES = [0.0, 0.3, 0.6]
CHAOS = Chaos(
    seed=11,
    server_error=0.2,
    rate_limit_burst=0.02,
    burst_length=5,
    stream_cut=0.02,
    malformed=0.01,
)


def test_a_sweep_survives_a_misbehaving_endpoint(tmp_path: Path, fake_llm: FakeLLM) -> None:
    home = tmp_path / "home"
    spec = {
        "name": "chaos",
        "endpoint": {"base_url": fake_llm.base_url},
        "parameters": {"model": ["fake-chat"], "temperature": TEMPERATURES, "max_tokens": 30},
        "pipeline": [{"name": "reply", "user": "Question {{ item.input.n }}: how do I do it?"}],
        "dataset": [{"input": {"n": n}} for n in range(ITEMS)],
        "scorers": [{"type": "format", "format": "length", "min_tokens": 1, "max_tokens": 50}],
        "sweep": {"max_concurrency": 8, "stream": True},
    }
    path = tmp_path / "chaos.yaml"
    path.write_text(yaml.safe_dump(spec))
    fake_llm.chaos(CHAOS)

    done = cli(home, "run", str(path), "--json", timeout=120)

    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    summary = json.loads(done.stdout)
    total = ITEMS * len(TEMPERATURES)
    assert summary["status"] == "completed"
    assert summary["runs"]["total"] == total
    assert summary["runs"]["completed"] + summary["runs"]["failed"] == total

    # At the server: group requests by call (every call's body is unique here).
    replies: dict[tuple[int, float], list[int]] = defaultdict(list)
    for request in fake_llm.requests:
        body = request.json
        n = int(body["messages"][-1]["content"].split(":")[0].removeprefix("Question "))
        reply = request.reply
        outcome = reply.status if reply.raw is None and reply.cut_after is None else -1
        replies[(n, body["temperature"])].append(outcome)
    assert len(replies) == total
    assert any(429 in outcomes for outcomes in replies.values()), "no 429 burst happened"
    failing_at_server = set()
    for call, outcomes in replies.items():
        attempts = [o for o in outcomes if o != 429]
        assert len(attempts) <= 3, f"call {call} was tried {len(attempts)} times: {outcomes}"
        assert attempts.count(200) <= 1 and attempts[-1:] in ([200], [500], [-1])
        if 200 not in attempts:
            assert len(attempts) == 3, f"call {call} gave up early: {outcomes}"
            failing_at_server.add(call)

    runs = cli_json(home, "runs", "list", "--status", "failed", "--limit", "1000")["items"]
    failed = {(r["item_index"], r["config"]["temperature"]): r for r in runs}
    assert set(failed) == failing_at_server
    assert len(failed) == summary["runs"]["failed"] >= 1
    for run in failed.values():
        detail = cli_json(home, "runs", "show", run["id"])
        assert "failed after 3 attempts" in detail["error"], detail["error"]
        assert any(
            reason in detail["error"] for reason in ("HTTP 500", "stream cut", "not JSON")
        ), detail["error"]
