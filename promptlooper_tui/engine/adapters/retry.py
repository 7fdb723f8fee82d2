"""How hard an OpenAI-compatible call tries: attempts and backoff for failures, and waits for 429s.

A 429 is the endpoint asking to slow down, not a failed attempt (DESIGN §5). The wait it asks
for is read from whichever header the server sends (`retry-after-ms`, `Retry-After` in seconds
or as an HTTP date, LiteLLM's `llm_provider-retry-after`, OpenAI's `x-ratelimit-reset-*`
durations such as "6m0s"), but never shorter than a floor that doubles with each 429 of the
same call, so `Retry-After: 0` cannot turn a call into a request storm. A call gives up once its
total rate-limit wait would pass the cap, and at once when the server asks for more than that.
"""

from __future__ import annotations

import email.utils
import math
import random
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

# Caps the backoff exponent so a long run of 429s cannot overflow the float maths.
_MAX_BACKOFF_EXPONENT = 32
#: One unit of an OpenAI-style duration ("6m0s", "1.5s", "20ms", "1h2m3s").
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)")
_UNIT_SECONDS = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}
#: A reset "duration" this large is a Unix time (2001 onwards), as some proxies send.
_UNIX_TIME_FROM = 1_000_000_000.0


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How hard to try. Delays are in seconds.

    `attempts`, `base_delay` and `max_delay` shape the retries of failures (full jitter).
    After a 429 the call waits at least `rate_limit_floor`, doubled for each further 429 of
    the same call up to `rate_limit_floor_max`, or longer when the server asks; it gives up
    once its rate-limit waits would add up to more than `rate_limit_cap`.
    """

    attempts: int = 3
    base_delay: float = 0.5
    max_delay: float = 8.0
    rate_limit_cap: float = 600.0
    rate_limit_floor: float = 1.0
    rate_limit_floor_max: float = 30.0

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError(f"attempts must be at least 1, got {self.attempts}")
        if not 0 <= self.rate_limit_floor <= self.rate_limit_floor_max:
            raise ValueError("rate_limit_floor must be between 0 and rate_limit_floor_max")

    def backoff(self, exponent: int) -> float:
        """Full jitter: uniform in [0, min(max_delay, base_delay * 2**exponent)]."""
        ceiling = self.base_delay * 2.0 ** min(exponent, _MAX_BACKOFF_EXPONENT)
        return random.uniform(0.0, min(self.max_delay, ceiling))

    def rate_limit_wait(self, asked: float | None, hits: int) -> float:
        """How long to wait after the `hits`+1-th 429 of a call when the server asked for
        `asked` seconds (None: it did not say): never under the growing floor, plus up to a
        tenth of jitter so the calls a burst stopped do not all come back at once."""
        exponent = min(hits, _MAX_BACKOFF_EXPONENT)
        floor = min(self.rate_limit_floor * 2.0**exponent, self.rate_limit_floor_max)
        wait = max(asked or 0.0, floor)
        return wait + random.uniform(0.0, wait / 10)


def requested_wait(headers: Mapping[str, str]) -> float | None:
    """Seconds a 429 answer asks the client to wait, from the first header that says; None
    when none does. Keys must be lower case (an answer's headers are case-insensitive anyway)."""
    for name, parse in (
        ("retry-after-ms", _milliseconds),
        ("x-ms-retry-after-ms", _milliseconds),
        ("retry-after", _seconds_or_date),
        ("llm_provider-retry-after", _seconds_or_date),
    ):
        value = headers.get(name)
        wait = parse(value) if value is not None else None
        if wait is not None:
            return wait
    return _ratelimit_reset(headers)


def _finite(value: float) -> float | None:
    return max(0.0, value) if math.isfinite(value) else None


def _milliseconds(value: str) -> float | None:
    try:
        return _finite(float(value) / 1000.0)
    except ValueError:
        return None


def _seconds_or_date(value: str) -> float | None:
    """Delta-seconds or an HTTP date (RFC 9110 Retry-After)."""
    try:
        return _finite(float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def duration_seconds(value: str) -> float | None:
    """An OpenAI-style duration ("6m0s", "1.5s", "250ms", "1h2m") or plain seconds, in seconds."""
    text = value.strip().lower()
    try:
        return _finite(float(text))
    except ValueError:
        pass
    parts = _DURATION_PART.findall(text)
    if not parts or "".join(number + unit for number, unit in parts) != text:
        return None
    return sum(float(number) * _UNIT_SECONDS[unit] for number, unit in parts)


def _ratelimit_reset(headers: Mapping[str, str]) -> float | None:
    """From `x-ratelimit-reset-requests` / `-tokens`: the reset of the exhausted limit when
    `x-ratelimit-remaining-*` says which one it is, else the later of the two."""
    resets: dict[str, float] = {}
    for kind in ("requests", "tokens"):
        value = headers.get(f"x-ratelimit-reset-{kind}")
        wait = duration_seconds(value) if value is not None else None
        if wait is not None:
            resets[kind] = _unix_time_or_wait(wait)
    exhausted = [
        wait
        for kind, wait in resets.items()
        if headers.get(f"x-ratelimit-remaining-{kind}", "").strip() == "0"
    ]
    chosen = exhausted or list(resets.values())
    return max(chosen) if chosen else None


def _unix_time_or_wait(value: float) -> float:
    if value < _UNIX_TIME_FROM:
        return value
    return max(0.0, value - datetime.now(UTC).timestamp())


def human_duration(seconds: float) -> str:
    """A wait in words a person reads at a glance: "45 s", "6 min", "3 h", "11,574 days"."""
    if seconds < 120:
        return f"{round(seconds, 2):g} s"
    if seconds < 2 * 3600:
        return f"{seconds / 60:,.0f} min"
    if seconds < 2 * 86400:
        return f"{seconds / 3600:,.0f} h"
    return f"{seconds / 86400:,.0f} days"
