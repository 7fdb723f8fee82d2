"""How a config (parameter name -> value) reads as text, the same in the CLI and the app: in
full (`format_config`), in a CLI table cell (`compact_config`), and as lines that tell a
table's configs apart (`compact_configs`, the app's tables). Pure text, no I/O."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from .records import RaceDecision

#: Shorter names for the parameters that tables show most, so configs stay distinguishable
#: when a narrow terminal trims the config column.
_SHORT_NAMES = {"temperature": "temp", "max_tokens": "max_tok", "presence_penalty": "pres",
                "frequency_penalty": "freq"}  # fmt: skip


def format_config(config: Mapping[str, Any]) -> str:
    """`model=small temperature=0.4`; '(fixed)' for a config with no swept parameter."""
    return " ".join(f"{k}={_value(v)}" for k, v in config.items()) or "(fixed)"


def compact_config(config: Mapping[str, Any]) -> str:
    """A config for a table cell: a text choice by its value alone (`large-model concise`),
    a number with its (short) name (`temp=0.5`)."""
    parts = [
        v
        if isinstance(v, str) and k in ("model", "prompt")
        else f"{_SHORT_NAMES.get(k, k)}={_value(v)}"
        for k, v in config.items()
    ]
    return " ".join(parts) or "(fixed)"


def compact_configs(configs: Sequence[Mapping[str, Any]]) -> list[str]:
    """Configs as short lines that tell them apart: a word only one parameter takes reads bare
    ("large-model"), anything else as key=value ("temperature=0.7"). Sweeps store only the
    parameters they vary, so every part of a line can differ between rows."""
    owners: dict[str, set[str]] = {}
    for config in configs:
        for key, value in config.items():
            if isinstance(value, str):
                owners.setdefault(value, set()).add(key)

    def part(key: str, value: Any) -> str:
        bare = isinstance(value, str) and len(owners[value]) == 1 and _is_word(value)
        return value if bare else format_config({key: value})

    return [" ".join(part(k, v) for k, v in config.items()) or "(fixed)" for config in configs]


def _value(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))


def _is_word(value: str) -> bool:
    """Reads as a name on its own: no spaces or "=", and not a number."""
    if not value or " " in value or "=" in value:
        return False
    try:
        float(value)
    except ValueError:
        return True
    return False


def race_text(decision: RaceDecision | None) -> str:
    """Where a config stands in a race, for a table cell: `alive`, `out at 18` (eliminated
    after 18 items) or `≈ #1 at 24` (equivalent to the leader after 24); '' outside a race."""
    if decision is None:
        return ""
    if decision.state == "alive":
        return "alive"
    verb = {"eliminated": "out", "equivalent": "≈ #1", "behind": "behind"}[decision.state]
    return f"{verb} at {decision.at_n}"


def race_sentence(decision: RaceDecision) -> str:
    """Where a config stands in a race, in full: what was decided, after how many items,
    against which leader, with the test's p-value."""
    if decision.state == "alive":
        return "alive in the race"
    leader = format_config(decision.against) if decision.against is not None else "the leader"
    if decision.state == "behind":
        return (
            f"stopped behind {leader} after {decision.at_n} items (a lower mean on the same "
            f"items, not a significant difference: p = {decision.p:.3g})"
        )
    verb = "eliminated by" if decision.state == "eliminated" else "equivalent to"
    return f"{verb} {leader} after {decision.at_n} items (p = {decision.p:.3g})"
