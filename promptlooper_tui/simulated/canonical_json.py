"""Canonical JSON of request bodies: the seed of a reply and the fingerprint in the request log."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from typing import Any


def canonical_dumps(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def canonical_parts(body: dict[str, Any]) -> dict[str, str]:
    """Canonical JSON of each top-level value, so several key subsets can share one dump."""
    return {key: canonical_dumps(value) for key, value in body.items()}


def join_parts(parts: dict[str, str], keys: Iterable[str]) -> str:
    """Canonical JSON of {key: body.get(key)} for `keys`, rebuilt from `parts` (missing: null).

    Equal to `canonical_dumps` of that dict, because sort_keys orders the top level by key too.
    """
    return (
        "{"
        + ",".join(f"{canonical_dumps(key)}:{parts.get(key, 'null')}" for key in sorted(keys))
        + "}"
    )


def sha256_hex(text: str | bytes) -> str:
    return hashlib.sha256(text.encode() if isinstance(text, str) else text).hexdigest()
