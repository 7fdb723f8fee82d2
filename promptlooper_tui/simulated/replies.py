"""The reply to a chat-completions body: a pure function of the body, cut by stop and max_tokens."""

from __future__ import annotations

import hashlib
import random
import re
from dataclasses import dataclass
from typing import Any

from promptlooper_tui.domain.errors import BadInput
from promptlooper_tui.domain.tokens import estimate_tokens

from .canonical_json import canonical_parts, join_parts
from .craft import NO_CRAFT, clamp_quality, craft
from .json_answers import json_answer
from .judge_answers import JUDGE_RE, ONLY_NUMBER_RE, judge_answer, judge_rating
from .ordinary_answers import ordinary_answer
from .prompt import Prompt, model_quality
from .proposer_answers import PROPOSER_RE, proposer_answer


@dataclass(frozen=True)
class SimulatedReply:
    """What the simulated model answers to one chat request."""

    text: str
    finish_reason: str  # "stop" or "length"
    prompt_tokens: int
    completion_tokens: int


# What a real model's sampling depends on. `stop` and `max_tokens` only end the generation, so
# they stay out: a cut reply is a prefix of the uncut one, as with real models.
_SEED_KEYS = (
    "model",
    "messages",
    "temperature",
    "top_p",
    "seed",
    "presence_penalty",
    "frequency_penalty",
    "response_format",
)
_NONSPACE_RE = re.compile(r"\S+")


def simulate_chat(body: dict[str, Any]) -> SimulatedReply:
    """The reply the endpoint gives to a chat-completions request body; pure and deterministic.

    `body` needs `model` and `messages`; the other OpenAI fields are optional. Raises BadInput
    for a body the endpoint would answer with 400.
    """
    problem = chat_problem(body)
    if problem:
        raise BadInput(problem)
    return reply_to_chat(body, canonical_parts(body))


def reply_to_chat(body: dict[str, Any], parts: dict[str, str]) -> SimulatedReply:
    """`simulate_chat` for a body already checked, given its `canonical_parts` (the app has
    them from fingerprinting the request)."""
    digest = hashlib.sha256(join_parts(parts, _SEED_KEYS).encode()).digest()
    rng = random.Random(int.from_bytes(digest[:8], "big"))
    prompt = Prompt.from_messages(body["messages"])
    proposing = PROPOSER_RE.search(prompt.last_user) is not None
    # A proposer is as good as its model: the cues in the templates it is shown are not for it.
    cues = NO_CRAFT if proposing else craft(prompt.lower)
    temperature = body.get("temperature")
    spread = 1.0 if temperature is None else float(temperature)
    quality = clamp_quality(
        model_quality(body["model"]) + cues.bonus - 0.15 * spread * rng.random()
    )
    if proposing:
        text = proposer_answer(prompt, quality, rng)
    else:
        text = _compose(prompt, body.get("response_format"), quality, cues.no_disclaimer, rng)
    text, finish_reason = _apply_limits(text, body.get("stop"), _max_tokens(body))
    return SimulatedReply(text, finish_reason, prompt.tokens, estimate_tokens(text))


def _compose(
    prompt: Prompt, response_format: Any, quality: float, no_disclaimer: bool, rng: random.Random
) -> str:
    """Pick the kind of answer the prompt asks for and write it."""
    format_type = response_format.get("type") if isinstance(response_format, dict) else None
    judge = JUDGE_RE.search(prompt.all_text) is not None
    if format_type in ("json_object", "json_schema"):
        return json_answer(prompt, response_format, judge, quality, rng, strict=True)
    if judge and ONLY_NUMBER_RE.search(prompt.all_text):
        return str(judge_rating(prompt, quality, rng))
    if "json" in prompt.lower:
        return json_answer(prompt, response_format, judge, quality, rng, strict=False)
    if judge:
        return judge_answer(prompt, quality, rng)
    return ordinary_answer(prompt, quality, rng, no_disclaimer=no_disclaimer)


def _max_tokens(body: dict[str, Any]) -> int | None:
    value = body.get("max_tokens")
    return body.get("max_completion_tokens") if value is None else value


def _apply_limits(text: str, stop: Any, max_tokens: int | None) -> tuple[str, str]:
    """Cut at the earliest stop string, then at max_tokens (finish_reason "length")."""
    stops = [stop] if isinstance(stop, str) else stop if isinstance(stop, list) else []
    cuts = [text.find(s) for s in stops if isinstance(s, str) and s]
    cut = min((index for index in cuts if index != -1), default=-1)
    if cut != -1:
        text = text[:cut]
    if max_tokens is not None and estimate_tokens(text) > max_tokens:
        return _truncate_to_tokens(text, max_tokens), "length"
    return text, "stop"


def _truncate_to_tokens(text: str, max_tokens: int) -> str:
    """The longest word prefix of `text` whose estimate_tokens is at most `max_tokens`."""
    ends = [match.end() for match in _NONSPACE_RE.finditer(text)]
    low, high = 0, len(ends)  # invariant: a prefix of `low` words fits
    while low < high:
        middle = (low + high + 1) // 2
        if estimate_tokens(text[: ends[middle - 1]]) <= max_tokens:
            low = middle
        else:
            high = middle - 1
    return text[: ends[low - 1]] if low else ""


def chat_problem(body: Any) -> str | None:
    """Why a chat-completions body would get a 400, or None when it is fine."""
    if not isinstance(body, dict):
        return "The request body must be a JSON object."
    if not isinstance(body.get("model"), str) or not body["model"]:
        return "you must provide a model parameter"
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        return "'messages' must be a non-empty array"
    for index, message in enumerate(messages):
        if not isinstance(message, dict) or not isinstance(message.get("role"), str):
            return f"'messages.{index}' must be an object with a string 'role'"
    for name in ("temperature", "top_p"):
        value = body.get(name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
            return f"'{name}' must be a number"
    for name in ("max_tokens", "max_completion_tokens"):
        value = body.get(name)
        if value is not None and (
            isinstance(value, bool) or not isinstance(value, int) or value < 1
        ):
            return f"'{name}' must be a positive integer"
    return None
