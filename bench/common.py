"""Shared pieces of the benchmarks: a free port and experiment builders."""

from __future__ import annotations

import socket
from typing import Any

import yaml


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def experiment(name: str, base_url: str, *, configs: int, items: int, repeats: int) -> str:
    """A single-stage experiment with `configs` temperatures, keyword + format scorers."""
    spec: dict[str, Any] = {
        "name": name,
        "endpoint": {"base_url": base_url},
        "parameters": {
            "model": "large-model",
            "temperature": [round(i / configs, 4) for i in range(configs)],
            "max_tokens": 64,
        },
        "pipeline": [{"name": "answer", "user": "Answer briefly: {{ item.input.question }}"}],
        "dataset": [
            {
                "input": {"question": f"How do I reset password number {i} in Settings?"},
                "keywords": ["Settings", "password"],
            }
            for i in range(items)
        ],
        "scorers": [
            {
                "type": "keyword",
                "required_present_from": "keywords",
                "required_absent": ["As an AI"],
            },
            {"type": "format", "format": "length", "min_tokens": 3, "max_tokens": 60},
        ],
        "sweep": {"strategy": "grid", "repeats": repeats},
    }
    return yaml.safe_dump(spec, sort_keys=False)
