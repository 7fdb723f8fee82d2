"""The one timestamp format of stored rows: UTC ISO 8601 to the millisecond, which sorts as
text in time order."""

from __future__ import annotations

from datetime import UTC, datetime


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")
