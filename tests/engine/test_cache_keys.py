"""Cache keys: every input of an LLM call changes its key, dict order never does, and the key
is the SHA-256 of a documented canonical JSON, so it is the same in every process."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from typing import Any

import pytest

from promptlooper_tui.engine.cache import cache_key, canonical_json

BASE_URL = "http://127.0.0.1:8080/v1"
MESSAGES = [
    {"role": "system", "content": "You are a support agent."},
    {"role": "user", "content": "How do I reset my password?"},
]
PARAMS: dict[str, Any] = {
    "model": "small-model",
    "temperature": 0.4,
    "top_p": 0.9,
    "max_tokens": 256,
    "seed": 7,
    "presence_penalty": 0.0,
    "frequency_penalty": 0.5,
    "stop": ["\n\n"],
    "response_format": {"type": "json_object"},
}

#: The canonical JSON of the call above: sorted keys, no spaces, unicode as is.
CANONICAL = (
    '{"base_url":"http://127.0.0.1:8080/v1","inputs":null,"kind":"chat",'
    '"messages":[{"content":"You are a support agent.","role":"system"},'
    '{"content":"How do I reset my password?","role":"user"}],"model":"small-model",'
    '"params":{"frequency_penalty":0.5,"max_tokens":256,"presence_penalty":0.0,'
    '"response_format":{"type":"json_object"},"seed":7,"stop":["\\n\\n"],'
    '"temperature":0.4,"top_p":0.9},"repeat":2}'
)
#: sha256(CANONICAL), pinned: a change here invalidates every user's cache.
PINNED_KEY = "d845cd548d9132d4072e5a69e34f56320f6631e6536796980f60760f205780f3"


def key(**changes: Any) -> str:
    call: dict[str, Any] = {
        "base_url": BASE_URL,
        "model": "small-model",
        "messages": MESSAGES,
        "params": PARAMS,
        "repeat": 2,
    }
    call.update(changes)
    return cache_key(**call)


def test_the_key_is_the_sha256_of_the_documented_canonical_json() -> None:
    assert key() == hashlib.sha256(CANONICAL.encode()).hexdigest() == PINNED_KEY


def test_the_key_is_the_same_in_another_process() -> None:
    script = (
        "from promptlooper_tui.engine.cache import cache_key\n"
        f"print(cache_key(base_url={BASE_URL!r}, model='small-model', messages={MESSAGES!r}, "
        f"params={PARAMS!r}, repeat=2))"
    )
    for hash_seed in ("1", "2"):
        done = subprocess.run(
            [sys.executable, "-c", script],
            capture_output=True,
            text=True,
            check=True,
            env={**os.environ, "PYTHONHASHSEED": hash_seed},
        )
        assert done.stdout.strip() == PINNED_KEY


def test_dict_order_does_not_matter() -> None:
    reversed_params = dict(reversed(list(PARAMS.items())))
    reversed_messages = [dict(reversed(list(m.items()))) for m in MESSAGES]
    assert key(params=reversed_params, messages=reversed_messages) == key()
    assert canonical_json({"b": 1, "a": {"d": 2, "c": 3}}) == '{"a":{"c":3,"d":2},"b":1}'


@pytest.mark.parametrize(
    "changes",
    [
        {"base_url": "http://127.0.0.1:8081/v1"},
        {"base_url": "https://api.example.com/v1"},
        {"model": "large-model"},
        {"repeat": 3},
        {"repeat": 0},
        {"messages": MESSAGES[1:]},
        {"messages": [*MESSAGES, {"role": "assistant", "content": "Open Settings."}]},
    ],
    ids=repr,
)
def test_each_call_input_changes_the_key(changes: dict[str, Any]) -> None:
    assert key(**changes) != key()


@pytest.mark.parametrize(
    ("index", "field"), [(0, "role"), (0, "content"), (1, "role"), (1, "content")]
)
def test_every_message_role_and_content_changes_the_key(index: int, field: str) -> None:
    messages = [dict(m) for m in MESSAGES]
    messages[index][field] = messages[index][field] + " "
    assert key(messages=messages) != key()


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("temperature", 0.8),
        ("top_p", 1.0),
        ("max_tokens", 255),
        ("seed", 8),
        ("presence_penalty", 0.1),
        ("frequency_penalty", 0.0),
        ("stop", ["\n"]),
        ("response_format", {"type": "text"}),
    ],
)
def test_every_request_parameter_changes_the_key(name: str, value: Any) -> None:
    assert PARAMS[name] != value
    changed = {**PARAMS, name: value}
    assert key(params=changed) != key()
    without = {k: v for k, v in PARAMS.items() if k != name}
    assert key(params=without) != key()


def test_equivalent_spellings_share_a_key() -> None:
    # A trailing slash names the same endpoint; an unset (None) parameter is not sent at all.
    assert key(base_url=BASE_URL + "/") == key()
    assert key(params={**PARAMS, "logit_bias": None}) == key()


def test_chat_and_embedding_calls_never_share_a_key() -> None:
    embedding = cache_key(
        base_url=BASE_URL, model="embed-small", kind="embedding", inputs=["a", "b"]
    )
    assert embedding != cache_key(
        base_url=BASE_URL, model="embed-small", kind="embedding", inputs=["b", "a"]
    )
    assert embedding != cache_key(base_url=BASE_URL, model="embed-small", messages=[])
