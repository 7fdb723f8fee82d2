"""Hostile-endpoint drill: calls through the OpenAI adapter against a server that answers too much,
for ever, too slowly, with a 429 storm, or by echoing the API key; each must end with a clear
error within its bound, in flat memory, keeping no secret.

    python -m bench.hostile_endpoint             # every mode
    python -m bench.hostile_endpoint --mode drip-fast --mode huge

The server is tests/fixtures/hostile_llm.py on 127.0.0.1 in this process. Each mode runs in a
fresh subprocess so its peak RSS (VmHWM, minus the RSS just before the call) is its own. Prints
one row per mode with its bound; exits 1 when one is missed.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Any

from tests.fixtures.hostile_llm import (
    MIB,
    Scenario,
    drip,
    echo_key,
    endless_body,
    endless_sse,
    hostile_server,
    huge_body,
    rate_limited,
)

KEY = "sk-bench-" + "5f3a" * 8
#: Bench limits: the default 8 MiB cap, a 5 s deadline and a 2 s idle timeout (the defaults,
#: 300 s and 60 s, would make the time-bound modes a quarter of an hour).
DEADLINE = 5.0
IDLE = 2.0
#: A call that ends at a bound may overrun it by this much on a loaded 2-core machine.
SLACK = 3.0
RSS_BOUND_MB = 20.0


@dataclass(frozen=True)
class Mode:
    name: str
    scenarios: tuple[Scenario, ...]
    aim: str
    max_seconds: float
    stream: bool = False
    #: For the 429 storm: the rate-limit wait cap, and the fewest seconds between requests.
    rate_limit_cap: float = 600.0
    floor: float = 0.0


MODES = [
    Mode("huge", (huge_body(50 * MIB),), "8 MiB cap; not retried", 5.0),
    Mode("endless-body", (endless_body(),), "8 MiB cap; not retried", 5.0),
    Mode("endless-sse", (endless_sse(),), "8 MiB cap; not retried", 5.0, stream=True),
    Mode(
        "drip-slow",
        (drip(interval=100.0),),
        f"1 B/100 s: idle timeout {IDLE:g} s x 3 attempts",
        3 * IDLE + SLACK,
    ),
    Mode(
        "drip-fast",
        (drip(interval=0.5),),
        f"1 B/0.5 s: deadline {DEADLINE:g} s; not retried",
        DEADLINE + SLACK,
    ),
    Mode(
        "429-storm",
        (rate_limited({"Retry-After": "0"}),),
        "Retry-After 0: >= 1 s floor, doubling; give up at 20 s cap",
        20.0 + SLACK,
        rate_limit_cap=20.0,
        floor=1.0,
    ),
    Mode(
        "echoed-key",
        (echo_key("error"), echo_key("text"), echo_key("stream_error"), echo_key("models")),
        "key in no error, text or model id",
        5.0,
    ),
]


def _rss_mb(field: str) -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return 0.0


async def _one_call(url: str, how: str, rate_limit_cap: float) -> str:
    """The outcome of one call (or, for the echo modes, of one call per scenario)."""
    from promptlooper_tui.domain.errors import EndpointError
    from promptlooper_tui.engine.adapters.openai import OpenAIClient, ResponseLimits, RetryPolicy

    limits = ResponseLimits(deadline=DEADLINE, idle_timeout=IDLE)
    retry = RetryPolicy(rate_limit_cap=rate_limit_cap)
    async with OpenAIClient(url, KEY, limits=limits, retry=retry) as client:
        if how == "models":
            return "models: " + ", ".join(await client.list_models())
        try:
            messages = [{"role": "user", "content": "hi"}]
            result = await client.chat(messages, {"model": "m"}, stream=how == "stream")
        except EndpointError as exc:
            return str(exc)
        return "ok: " + result.text


def child(mode_name: str, urls: list[str]) -> None:
    """Runs in the subprocess: one mode's calls; prints a JSON line."""
    import promptlooper_tui.engine.adapters.openai  # noqa: F401  (imports are not the call's RSS)

    mode = next(m for m in MODES if m.name == mode_name)
    before = _rss_mb("VmRSS")
    started = time.perf_counter()
    outcomes = []
    for target in urls:
        how, _, url = target.partition(" ")
        outcomes.append(asyncio.run(_one_call(url, how, mode.rate_limit_cap)))
    took = time.perf_counter() - started
    peak = _rss_mb("VmHWM") - before
    print(json.dumps({"seconds": took, "rss_delta_mb": peak, "outcomes": outcomes}))


def run_mode(server: Any, mode: Mode) -> tuple[dict[str, Any], list[str]]:
    urls = [server.base_url(s) for s in mode.scenarios]
    # How the child calls each URL: chat, stream (an event stream) or models (GET /models).
    hows = [
        "models"
        if s.where == "models"
        else ("stream" if mode.stream or s.where.startswith("stream") else "chat")
        for s in mode.scenarios
    ]
    args = [f"{how} {url}" for how, url in zip(hows, urls, strict=True)]
    done = subprocess.run(
        [sys.executable, "-m", "bench.hostile_endpoint", "--child", mode.name, *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"{mode.name}: {done.stderr}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    problems = []
    if result["seconds"] > mode.max_seconds:
        problems.append(f"took {result['seconds']:.1f} s > {mode.max_seconds:g} s")
    if result["rss_delta_mb"] > RSS_BOUND_MB:
        problems.append(f"RSS +{result['rss_delta_mb']:.1f} MB > {RSS_BOUND_MB:g} MB")
    # Not even a prefix of the key may show (a cut must not leave half of it behind).
    if any(KEY[:8] in outcome for outcome in result["outcomes"]):
        problems.append("the key was shown")
    if mode.name == "echoed-key":
        if not any("[API key]" in outcome for outcome in result["outcomes"]):
            problems.append("no echo was seen scrubbed")
    elif any(outcome.startswith("ok") for outcome in result["outcomes"]):
        problems.append("the call succeeded")
    if mode.floor:
        arrivals = [a.at for a in server.requests(urls[0])]
        gaps = [later - earlier for earlier, later in itertools.pairwise(arrivals)]
        result["requests"] = len(arrivals)
        result["min_gap"] = min(gaps) if gaps else 0.0
        if gaps and min(gaps) < mode.floor * 0.9:
            problems.append(f"429 retried after {min(gaps):.2f} s < {mode.floor:g} s floor")
    return result, problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mode", action="append", choices=[m.name for m in MODES])
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("urls", nargs="*", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.urls)
        return 0
    failed = False
    with hostile_server() as server:
        for mode in [m for m in MODES if not args.mode or m.name in args.mode]:
            result, problems = run_mode(server, mode)
            failed |= bool(problems)
            extra = ""
            if "requests" in result:
                extra = f", {result['requests']} requests, min gap {result['min_gap']:.2f} s"
            outcome = " | ".join(o[:150] for o in result["outcomes"])
            print(
                f"{mode.name:<13} {result['seconds']:6.2f} s (aim < {mode.max_seconds:g} s)  "
                f"RSS +{result['rss_delta_mb']:5.1f} MB (aim < +{RSS_BOUND_MB:g} MB)  "
                f"{'ok' if not problems else 'MISSED: ' + '; '.join(problems)}\n"
                f"              aim: {mode.aim}{extra}\n              outcome: {outcome}"
            )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
