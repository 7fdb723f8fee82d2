"""A deterministic, OpenAI-compatible fake LLM server for the quick start, tests and benchmarks.

Replies are a pure function of the request body (same body => same bytes), yet they vary with
the model name, temperature, seed and prompt the way real models do, so sweeps rank
configurations meaningfully: bigger models mention more of the question's keywords, keep JSON
valid and avoid "As an AI language model". Latency, API-key checks and faults (500, 429,
malformed JSON, cut streams) are switched on with `SimulatorOptions`; the `/_sim/*` routes expose
request counters and a log so tests can count the calls that reached the server.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import math
import random
import re
import sys
import time
import zlib
from collections import Counter, deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from promptlooper_tui.asgi import serve_app
from promptlooper_tui.domain.errors import BadInput
from promptlooper_tui.domain.tokens import estimate_tokens
from promptlooper_tui.signals import on_stop_signals

logger = logging.getLogger(__name__)

#: Model ids listed by GET /v1/models (any other name is accepted too).
MODELS = ("small-model", "medium-model", "large-model", "judge-model", "embed-small")
#: Length of every embedding vector.
EMBEDDING_DIMS = 256
#: Entries kept in the request log; older ones are dropped first.
LOG_LIMIT = 200_000

# A fixed `created` keeps whole response bodies byte-identical for identical requests.
_CREATED = 1_700_000_000
_SYSTEM_FINGERPRINT = "promptlooper-sim"
_RATES = ("fail_rate", "rate_limit_rate", "cut_rate", "malformed_rate")


@dataclass(frozen=True)
class SimulatorOptions:
    """How the simulated endpoint behaves. Rates are per-request probabilities in [0, 1].

    Faults are rolled in this order: 429 (rate_limit_rate), 500 (fail_rate), 200 with a body
    that is not JSON (malformed_rate), then, for streamed chat only, a cut stream (cut_rate).
    Faults apply to chat completions and embeddings; latency and the API key to every /v1 route.
    """

    latency_ms: float = 0.0  # every /v1 answer leaves this long after arrival; no jitter
    fail_rate: float = 0.0
    rate_limit_rate: float = 0.0
    retry_after: float = 1.0  # seconds, sent as the Retry-After header of a 429
    cut_rate: float = 0.0  # a cut stream ends cleanly but without the finish, usage and [DONE]
    malformed_rate: float = 0.0
    api_key: str | None = None  # when set, /v1 requests need "Authorization: Bearer <api_key>"
    seed: int = 0  # seeds the fault dice only; replies never depend on it

    def __post_init__(self) -> None:
        for name in _RATES:
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise BadInput(f"{name} must be between 0 and 1, got {value}")
        if not self.latency_ms >= 0.0:
            raise BadInput(f"latency_ms must be >= 0, got {self.latency_ms}")
        if not self.retry_after >= 0.0:
            raise BadInput(f"retry_after must be >= 0, got {self.retry_after}")


DEFAULT_OPTIONS = SimulatorOptions()


@dataclass(frozen=True)
class SimulatedReply:
    """What the simulated model answers to one chat request."""

    text: str
    finish_reason: str  # "stop" or "length"
    prompt_tokens: int
    completion_tokens: int


# ---------------------------------------------------------------------------------------------
# Tokens and canonical JSON
# ---------------------------------------------------------------------------------------------

_NONSPACE_RE = re.compile(r"\S+")


def count_tokens(text: str) -> int:
    """Approximate token count, the engine's estimate: ceil(words * 4 / 3); 0 for blank text.

    Usage numbers use it, so the engine's own estimates match what this endpoint reports.
    """
    return estimate_tokens(text)


def _truncate_to_tokens(text: str, max_tokens: int) -> str:
    """The longest word prefix of `text` whose count_tokens is at most `max_tokens`."""
    ends = [match.end() for match in _NONSPACE_RE.finditer(text)]
    low, high = 0, len(ends)  # invariant: a prefix of `low` words fits
    while low < high:
        middle = (low + high + 1) // 2
        if count_tokens(text[: ends[middle - 1]]) <= max_tokens:
            low = middle
        else:
            high = middle - 1
    return text[: ends[low - 1]] if low else ""


def _dumps(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def _canonical_parts(body: dict[str, Any]) -> dict[str, str]:
    """Canonical JSON of each top-level value, so several key subsets can share one dump."""
    return {key: _dumps(value) for key, value in body.items()}


def _join_parts(parts: dict[str, str], keys: Iterable[str]) -> str:
    """Canonical JSON of {key: body.get(key)} for `keys`, rebuilt from `parts` (missing: null).

    Equal to `_dumps` of that dict, because sort_keys orders the top level by key too.
    """
    return "{" + ",".join(f"{_dumps(key)}:{parts.get(key, 'null')}" for key in sorted(keys)) + "}"


def _sha256(text: str | bytes) -> str:
    return hashlib.sha256(text.encode() if isinstance(text, str) else text).hexdigest()


# ---------------------------------------------------------------------------------------------
# Prompt analysis
# ---------------------------------------------------------------------------------------------

# Function words, words that say how to answer rather than what about, and UI verbs that
# would read badly inside the reply templates ("open Open").
_STOPWORD_TEXT = """
    a about above after again all also am an and any are as at be because been before being
    below between both but by can could did do does doing done down during each either else
    even ever every few for from further get gets give given gives had has have having he her
    here hers him his how however i if in into is it its itself just know let like make many
    may me might more most much must my need no nor not now of off on once only or other our
    out over own please same say see she should so some such tell than that the their them
    then there these they this those through to too under until up upon us use used using very
    want was way we well were what when where whether which while who whom whose why will with
    within without would yes yet you your yours answer answers question questions reply respond
    response sentence sentences brief briefly concise concisely short detailed detail step steps
    explain describe write provide list include including one two three four five following
    return output text input json rate rating score scale open press click choose select live
    lives find
    """
_STOPWORDS = frozenset(_STOPWORD_TEXT.split())
_WORD_RE = re.compile(r"[A-Za-z][A-Za-z0-9'\u2019-]*[A-Za-z0-9]|[A-Za-z]")
_LOWER_TOKEN_RE = re.compile(r"\w+")
_LENGTH_RULES = (
    (re.compile(r"\b(?:one|1|single)[ -]sentence\b"), 1),
    (re.compile(r"\b(?:two|2) sentences\b|\bbrief(?:ly)?\b|\bconcise(?:ly)?\b|\bshort\b"), 2),
    (re.compile(r"\b(?:three|3) sentences\b"), 3),
    (re.compile(r"\bdetailed\b|\bin detail\b|\bstep[- ]by[- ]step\b|\bthorough(?:ly)?\b"), 6),
)
_DEFAULT_SENTENCES = 4
_STEPS_RE = re.compile(r"\bstep[- ]by[- ]step\b")
_JUDGE_RE = re.compile(r"\b1\s*(?:-|\u2013|to)\s*10\b|\bout of 10\b", re.IGNORECASE)
_ONLY_NUMBER_RE = re.compile(r"\bonly (?:the|a|one) (?:number|integer|digit)\b", re.IGNORECASE)
_MARKER_RE = re.compile(
    r"\b(?:(?P<ref>reference|expected|gold|ideal|correct)(?:[ \t]+(?:answer|output|response))?"
    r"|(?P<out>(?:(?:model|candidate|student|assistant)[ \t]+)?(?:output|answer|response))"
    r"|(?P<other>question|input|prompt|context|criteria|task|rubric))[ \t]*:",
    re.IGNORECASE,
)
_QUALITY_TIERS = (
    (("large", "big", "pro", "gpt-4", "70b"), 0.9),
    (("medium", "8b"), 0.72),
    (("small", "mini", "tiny", "1b"), 0.5),
)
_DEFAULT_QUALITY = 0.65


@dataclass(frozen=True)
class _Prompt:
    """The text of a chat request, prepared once for the answer builders."""

    all_text: str  # every message's content, one per line
    lower: str
    last_user: str  # the last user message (the last message if no user spoke)
    tokens: int

    @classmethod
    def from_messages(cls, messages: list[dict[str, Any]]) -> _Prompt:
        contents = [_content_text(message.get("content")) for message in messages]
        user = [
            text
            for message, text in zip(messages, contents, strict=True)
            if message["role"] == "user"
        ]
        all_text = "\n".join(contents)
        tokens = sum(count_tokens(text) + 4 for text in contents)
        last_user = user[-1] if user else contents[-1]
        return cls(all_text, all_text.lower(), last_user, tokens)


def _content_text(content: Any) -> str:
    """A message's text: a plain string, or the text parts of an OpenAI content-part list."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(
            part["text"]
            for part in content
            if isinstance(part, dict) and isinstance(part.get("text"), str)
        )
    return ""


def _model_quality(model: str) -> float:
    name = model.lower()
    for markers, quality in _QUALITY_TIERS:
        if any(marker in name for marker in markers):
            return quality
    return _DEFAULT_QUALITY


def _keywords(text: str) -> list[str]:
    """Content words of `text` in order, deduplicated: 4+ letters or Capitalized, no stopwords."""
    seen: dict[str, str] = {}
    for word in _WORD_RE.findall(text):
        lower = word.lower()
        if lower not in seen and lower not in _STOPWORDS and (len(word) >= 4 or word[0].isupper()):
            seen[lower] = word
    return list(seen.values())


def _subject_first(words: list[str], text: str) -> list[str]:
    """`words` with those after the message's last colon first: prompts put the instruction
    first and the subject after it ("Question: ...", "Change: ..."), and an answer is about
    the subject."""
    _, colon, subject = text.rpartition(":")
    if not colon:
        return words
    wanted = {word.lower() for word in _keywords(subject)}
    return sorted(words, key=lambda word: word.lower() not in wanted)


def _bag(text: str) -> set[str]:
    """Lowercase content tokens for overlap: numbers and 3+ letter non-stopwords."""
    return {
        token
        for token in _LOWER_TOKEN_RE.findall(text.lower())
        if token.isdigit() or (len(token) >= 3 and token not in _STOPWORDS)
    }


def _sentence_budget(lower: str) -> int:
    for pattern, sentences in _LENGTH_RULES:
        if pattern.search(lower):
            return sentences
    return _DEFAULT_SENTENCES


# ---------------------------------------------------------------------------------------------
# Ordinary answers
# ---------------------------------------------------------------------------------------------

_SLOT_TEMPLATES = (
    "To do this, open {x} and follow the prompts.",
    "The key point is {x}.",
    "Start with {x} and check the result.",
    "In short, it comes down to {x}.",
    "Make sure to review {x} first.",
    "This usually involves {x}.",
    "Most people find that {x} is what matters most.",
    "It also helps to think about {x}.",
)
_FILLERS = (
    "This is a common question.",
    "The details can vary with your setup.",
    "It is usually straightforward once you know where to look.",
    "Let me know if you need more help.",
    "Results may differ slightly between versions.",
    "A quick test will confirm it works.",
)
_KEYWORDS_PER_SENTENCE = 3
_AI_DISCLAIMER = "As an AI language model,"


def _ordinary_answer(
    prompt: _Prompt, quality: float, rng: random.Random, sentences: int | None = None
) -> str:
    """Template sentences mentioning each keyword of the question with probability `quality`."""
    count = sentences or _sentence_budget(prompt.lower)
    limit = count * _KEYWORDS_PER_SENTENCE
    chosen: list[str] = []
    for word in _subject_first(_keywords(prompt.last_user), prompt.last_user):
        if rng.random() < quality:
            chosen.append(word)
            if len(chosen) == limit:
                break
    lines = _sentences(chosen, count, rng)
    steps = sentences is None and _STEPS_RE.search(prompt.lower) is not None
    text = (
        "\n".join(f"{i}. {line}" for i, line in enumerate(lines, 1)) if steps else " ".join(lines)
    )
    if rng.random() < (1.0 - quality) * 0.3:
        return f"{_AI_DISCLAIMER} here is my answer.\n{text}"
    return text


def _sentences(words: list[str], count: int, rng: random.Random) -> list[str]:
    groups = _split_even(words, count)
    templates = rng.sample(_SLOT_TEMPLATES, len(groups))
    lines = [
        template.format(x=_join_words(group))
        for template, group in zip(templates, groups, strict=True)
    ]
    return lines + rng.sample(_FILLERS, count - len(groups))


def _split_even(items: list[str], parts: int) -> list[list[str]]:
    """`items` in order, cut into min(parts, len(items)) groups whose sizes differ by <= 1."""
    groups = min(parts, len(items))
    if not groups:
        return []
    size, extra = divmod(len(items), groups)
    out, start = [], 0
    for index in range(groups):
        end = start + size + (1 if index < extra else 0)
        out.append(items[start:end])
        start = end
    return out


def _join_words(words: list[str]) -> str:
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]


# ---------------------------------------------------------------------------------------------
# Judge answers
# ---------------------------------------------------------------------------------------------

_JUDGE_SHAPES = (
    "Rating: {n}/10",
    "**{n}**",
    "I'd give this a {n} out of 10.",
    "Score: {n}\nReason: {reason}",
    "{n}",
)


def _judge_rating(prompt: _Prompt, quality: float, rng: random.Random) -> int:
    """1..10 from the word overlap (F1) of the marked output and reference, else seeded 4..8."""
    sections = _marked_sections(prompt.all_text)
    output, reference = sections.get("out"), sections.get("ref")
    reference_words = _bag(reference) if reference is not None else set()
    if output is None or not reference_words:
        return rng.randint(4, 8)
    output_words = _bag(output)
    shared = len(output_words & reference_words)
    if not shared:
        return 1
    precision, recall = shared / len(output_words), shared / len(reference_words)
    rating = 1 + round(9 * 2 * precision * recall / (precision + recall))
    # A weaker judge is a noisier judge.
    if rng.random() < (1.0 - quality) * 0.5:
        rating += rng.choice((-1, 1))
    return min(10, max(1, rating))


def _marked_sections(text: str) -> dict[str, str]:
    """Text after the last "Output:"/"Answer:" ("out") and "Reference:" ("ref") markers.

    A section runs to the next marker of any kind, so "Question:" etc. end it too.
    """
    matches = list(_MARKER_RE.finditer(text))
    sections: dict[str, str] = {}
    for index, match in enumerate(matches):
        end = matches[index + 1].start() if index + 1 < len(matches) else len(text)
        sections[match.lastgroup or "other"] = text[match.end() : end].strip()
    return sections


def _judge_reason(rating: int) -> str:
    if rating >= 8:
        return "The output closely matches what was asked."
    if rating >= 5:
        return "The output is partly correct but misses some details."
    return "The output differs substantially from what was expected."


def _judge_answer(prompt: _Prompt, quality: float, rng: random.Random) -> str:
    rating = _judge_rating(prompt, quality, rng)
    return rng.choice(_JUDGE_SHAPES).format(n=rating, reason=_judge_reason(rating))


# ---------------------------------------------------------------------------------------------
# JSON answers
# ---------------------------------------------------------------------------------------------

_KEYS_RE = re.compile(r"\b(?:keys|fields)\s*:[ \t]*([^\n]*)", re.IGNORECASE)
_SENTENCE_END_RE = re.compile(r"[.;](?:\s|$)")
_KEY_SPLIT_RE = re.compile(r"\s*(?:,|\band\b)\s*")
_KEY_PART_RE = re.compile(r"[_\-\s]+|(?<=[a-z])(?=[A-Z])")
_CANDIDATE_RE = re.compile(
    r'"(?P<quoted>[^"\n]{1,200})"|\u201c(?P<curly>[^\u201d\n]{1,200})\u201d'
    r"|(?P<email>[\w.+-]+@[\w-]+(?:\.[\w-]+)+)"
    r"|(?<![\w.])(?P<num>-?\d{1,3}(?:,\d{3})+(?:\.\d+)?|-?\d+(?:\.\d+)?)"
    r"|(?P<cap>[A-Z][\w'\u2019-]*(?:[ \t]+[A-Z][\w'\u2019-]*)*)(?P<label>[ \t]*:)?"
)
_CAP_STOPWORDS = _STOPWORDS | {"extract", "json", "format", "text", "input", "output", "data"}
_NUMERIC_KEY_PARTS = frozenset(
    {
        "age",
        "count",
        "amount",
        "total",
        "quantity",
        "qty",
        "price",
        "cost",
        "number",
        "year",
        "sum",
        "population",
    }
)
_SCORE_KEY_PARTS = frozenset({"score", "rating", "grade"})
_REASON_KEY_PARTS = frozenset({"reason", "explanation", "rationale", "justification", "feedback"})
_EMAIL_KEY_PARTS = frozenset({"email", "mail"})
_SCHEMA_KINDS = {"integer": "num", "number": "num", "boolean": "bool", "array": "list"}
_FALLBACKS = {"str": ("str", "email", "num"), "email": ("email", "str"), "num": ("num",)}
_MAX_SCHEMA_ATTEMPTS = 64
_DEGRADATIONS = ("fence", "prose", "drop", "truncate")


def _json_answer(
    prompt: _Prompt,
    response_format: Any,
    judge: bool,
    quality: float,
    rng: random.Random,
    *,
    strict: bool,
) -> str:
    """A JSON object with the requested keys; unless `strict`, weak models sometimes botch it."""
    fields, schema_text = _json_fields(prompt, response_format, judge)
    pool = _Candidates(_value_source(prompt.last_user, schema_text))
    rated = any(kind in ("score", "reason") for _, kind in fields)
    rating = _judge_rating(prompt, quality, rng) if rated else 0
    answer: dict[str, Any] = {}
    for key, kind in fields:
        if kind == "score":
            answer[key] = rating
        elif kind == "reason":
            answer[key] = _judge_reason(rating)
        elif kind == "text":
            answer[key] = _ordinary_answer(prompt, quality, rng, sentences=1)
        elif kind == "bool":
            answer[key] = rng.random() < 0.5
        else:
            # A weaker model sometimes grabs the wrong span of the input.
            if rng.random() < (1.0 - quality) * 0.3:
                pool.take(kind if kind in ("num", "email") else "str")
            answer[key] = pool.take_list() if kind == "list" else pool.take(kind)
    if strict or rng.random() >= (1.0 - quality) * 0.5:
        return json.dumps(answer, ensure_ascii=False)
    return _degrade(answer, rng)


def _degrade(answer: dict[str, Any], rng: random.Random) -> str:
    """The ways real models botch JSON: fences, chatty prose, a missing key, a cut-off object."""
    mode = rng.choice(_DEGRADATIONS)
    if mode == "drop" and answer:
        del answer[rng.choice(list(answer))]
    text = json.dumps(answer, ensure_ascii=False)
    if mode == "fence":
        return f"```json\n{text}\n```"
    if mode == "prose":
        return f"Sure! Here is the JSON you asked for:\n{text}"
    if mode == "truncate":
        return text[: max(1, len(text) * 2 // 3)]
    return text


def _json_fields(
    prompt: _Prompt, response_format: Any, judge: bool
) -> tuple[list[tuple[str, str]], str]:
    """(key, kind) pairs to answer with, and the schema text found in the prompt (or "")."""
    properties = _schema_properties(response_format)
    schema_text = ""
    keys: list[str] = []
    if properties is None:
        match = _KEYS_RE.search(prompt.all_text)
        keys = _parse_key_list(match.group(1)) if match else []
    if properties is None and not keys:
        found = _find_schema(prompt.all_text)
        if found:
            properties, schema_text = found
    if properties:
        keys = list(properties)
    if not keys:
        defaults = [("score", "score"), ("reason", "reason")] if judge else [("answer", "text")]
        return defaults, schema_text
    return [(key, _key_kind(key, (properties or {}).get(key), judge)) for key in keys], schema_text


def _parse_key_list(line: str) -> list[str]:
    end = _SENTENCE_END_RE.search(line)
    keys: dict[str, None] = {}
    for raw in _KEY_SPLIT_RE.split(line[: end.start()] if end else line):
        words = raw.split()
        # "fields: name, age from this text" - a long item is a key followed by prose.
        key = (words[0] if len(words) > 2 else " ".join(words)).strip("\"'`*.:")
        if key and len(key) <= 40:
            keys[key] = None
    return list(keys)


def _schema_properties(value: Any) -> dict[str, Any] | None:
    """The "properties" of a JSON Schema, also inside {"schema": ...}/{"json_schema": ...}."""
    if not isinstance(value, dict):
        return None
    properties = value.get("properties")
    if isinstance(properties, dict) and properties:
        return properties
    for wrapper in ("json_schema", "schema"):
        if wrapper in value:
            return _schema_properties(value[wrapper])
    return None


def _find_schema(text: str) -> tuple[dict[str, Any], str] | None:
    """The first JSON object embedded in `text` that is a schema with properties."""
    if '"properties"' not in text:
        return None
    decoder = json.JSONDecoder()
    start = text.find("{")
    for _ in range(_MAX_SCHEMA_ATTEMPTS):
        if start == -1:
            return None
        try:
            value, end = decoder.raw_decode(text, start)
        except ValueError:
            start = text.find("{", start + 1)
            continue
        properties = _schema_properties(value)
        if properties:
            return properties, text[start:end]
        start = text.find("{", end)
    return None


def _key_kind(key: str, schema: Any, judge: bool) -> str:
    parts = {part.lower() for part in _KEY_PART_RE.split(key) if part}
    if judge and parts & _SCORE_KEY_PARTS:
        return "score"
    if judge and parts & _REASON_KEY_PARTS:
        return "reason"
    schema_type = schema.get("type") if isinstance(schema, dict) else None
    if isinstance(schema_type, list):
        schema_type = next((t for t in schema_type if t != "null"), None)
    if schema_type in _SCHEMA_KINDS:
        return _SCHEMA_KINDS[schema_type]
    if parts & _EMAIL_KEY_PARTS:
        return "email"
    return "num" if parts & _NUMERIC_KEY_PARTS else "str"


def _value_source(user_text: str, schema_text: str) -> str:
    """The part of the user message that holds the data: no schema, no instruction lines."""
    text = user_text.replace(schema_text, " ") if schema_text else user_text
    lines = [
        line
        for line in text.splitlines()
        if not _KEYS_RE.search(line) and "json" not in line.lower()
    ]
    return "\n".join(lines).strip() or text


class _Candidates:
    """Values found in the input, in order, handed out once each by kind."""

    def __init__(self, text: str) -> None:
        self._by_kind: dict[str, deque[tuple[str, Any]]] = {
            "str": deque(),
            "email": deque(),
            "num": deque(),
        }
        for match in _CANDIDATE_RE.finditer(text):
            kind, value = _candidate(match)
            if value is not None:
                # A string key gets a number as written ("2,100,000"), a numeric key its value.
                text = match.group("num") if kind == "num" else value
                self._by_kind[kind].append((text, value))

    def take(self, kind: str) -> Any:
        """The next unused value for a key of `kind`, falling back to related kinds; else None."""
        for source in _FALLBACKS[kind]:
            if self._by_kind[source]:
                text, value = self._by_kind[source].popleft()
                return value if kind == "num" else text
        return None

    def take_list(self) -> list[Any]:
        return [value for value in (self.take("str") for _ in range(3)) if value is not None]


def _candidate(match: re.Match[str]) -> tuple[str, Any]:
    """(kind, value) of one candidate match; value None when it is a label or a stopword."""
    group = match.lastgroup
    if group in ("quoted", "curly"):
        return "str", match.group(group).strip() or None
    if group == "email":
        return "email", match.group("email")
    if group == "num":
        digits = match.group("num").replace(",", "")
        return "num", float(digits) if "." in digits else int(digits)
    if match.group("label"):
        return "str", None
    words = match.group("cap").split()
    while words and words[0].lower() in _CAP_STOPWORDS:
        words.pop(0)
    return "str", " ".join(words) or None


# ---------------------------------------------------------------------------------------------
# The reply
# ---------------------------------------------------------------------------------------------

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


def simulate_chat(body: dict[str, Any]) -> SimulatedReply:
    """The reply the endpoint gives to a chat-completions request body; pure and deterministic.

    `body` needs `model` and `messages`; the other OpenAI fields are optional. Raises BadInput
    for a body the endpoint would answer with 400.
    """
    problem = _chat_problem(body)
    if problem:
        raise BadInput(problem)
    return _simulate_chat(body, _canonical_parts(body))


def _simulate_chat(body: dict[str, Any], parts: dict[str, str]) -> SimulatedReply:
    digest = hashlib.sha256(_join_parts(parts, _SEED_KEYS).encode()).digest()
    rng = random.Random(int.from_bytes(digest[:8], "big"))
    prompt = _Prompt.from_messages(body["messages"])
    temperature = body.get("temperature")
    spread = 1.0 if temperature is None else float(temperature)
    quality = _model_quality(body["model"]) - 0.15 * spread * rng.random()
    text = _compose(prompt, body.get("response_format"), max(0.05, quality), rng)
    text, finish_reason = _apply_limits(text, body.get("stop"), _max_tokens(body))
    return SimulatedReply(text, finish_reason, prompt.tokens, count_tokens(text))


def _compose(prompt: _Prompt, response_format: Any, quality: float, rng: random.Random) -> str:
    """Pick the kind of answer the prompt asks for and write it."""
    format_type = response_format.get("type") if isinstance(response_format, dict) else None
    judge = _JUDGE_RE.search(prompt.all_text) is not None
    if format_type in ("json_object", "json_schema"):
        return _json_answer(prompt, response_format, judge, quality, rng, strict=True)
    if judge and _ONLY_NUMBER_RE.search(prompt.all_text):
        return str(_judge_rating(prompt, quality, rng))
    if "json" in prompt.lower:
        return _json_answer(prompt, response_format, judge, quality, rng, strict=False)
    if judge:
        return _judge_answer(prompt, quality, rng)
    return _ordinary_answer(prompt, quality, rng)


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
    if max_tokens is not None and count_tokens(text) > max_tokens:
        return _truncate_to_tokens(text, max_tokens), "length"
    return text, "stop"


def _chat_problem(body: Any) -> str | None:
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


# ---------------------------------------------------------------------------------------------
# Embeddings
# ---------------------------------------------------------------------------------------------

_WORD_WEIGHT = 1.0
_TRIGRAM_WEIGHT = 0.35
_STOPWORD_TRIGRAM_WEIGHT = 0.1


def simulate_embedding(text: str) -> list[float]:
    """A deterministic, L2-normalised EMBEDDING_DIMS vector from hashed words and trigrams.

    Equal texts give the same list; texts sharing words score a high cosine, unrelated ones low.
    """
    vector = [0.0] * EMBEDDING_DIMS
    for word in _LOWER_TOKEN_RE.findall(text.lower()):
        stopword = word in _STOPWORDS
        if not stopword:
            _add_feature(vector, "w:" + word, _WORD_WEIGHT)
        padded = f"#{word}#"
        weight = _STOPWORD_TRIGRAM_WEIGHT if stopword else _TRIGRAM_WEIGHT
        for start in range(len(padded) - 2):
            _add_feature(vector, padded[start : start + 3], weight)
    norm = math.sqrt(sum(value * value for value in vector))
    if norm == 0.0:
        vector[0] = 1.0  # empty text still needs a unit vector
        return vector
    return [value / norm for value in vector]


def _add_feature(vector: list[float], feature: str, weight: float) -> None:
    # crc32, not hash(): Python's str hash is randomised per process.
    digest = zlib.crc32(feature.encode())
    vector[digest % EMBEDDING_DIMS] += weight if digest & 0x100 else -weight


def _embedding_problem(body: Any) -> str | None:
    if not isinstance(body, dict):
        return "The request body must be a JSON object."
    if not isinstance(body.get("model"), str) or not body["model"]:
        return "you must provide a model parameter"
    texts = body.get("input")
    if isinstance(texts, str):
        return None
    if not isinstance(texts, list) or not texts or not all(isinstance(t, str) for t in texts):
        return "'input' must be a string or a non-empty array of strings"
    return None


# ---------------------------------------------------------------------------------------------
# Server state
# ---------------------------------------------------------------------------------------------


@dataclass(slots=True)
class RequestRecord:
    """One /v1 request as the server saw it."""

    seq: int
    path: str
    fingerprint: str  # sha256 hex of the canonical JSON body (of the raw bytes if not JSON)
    started: float
    status: int | None = None
    finished: float | None = None  # when the full response was sent; None if cut or unsent

    def as_dict(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "path": self.path,
            "fingerprint": self.fingerprint,
            "status": self.status,
            "started": self.started,
            "finished": self.finished,
        }


class SimulatorState:
    """Request counters, a bounded request log and the fault dice; lives on `app.state.sim`.

    Only /v1 routes are counted and logged; the /_sim routes that read them are not.
    """

    def __init__(self, options: SimulatorOptions, log_limit: int = LOG_LIMIT) -> None:
        self.options = options
        self.requests = 0
        self.by_path: Counter[str] = Counter()
        self.by_status: Counter[int] = Counter()
        self.log: deque[RequestRecord] = deque(maxlen=log_limit)
        self._seq = 0
        self._dice = random.Random(options.seed)

    def begin(self, path: str, fingerprint: str) -> RequestRecord:
        """Count and log a request that just arrived."""
        self._seq += 1
        self.requests += 1
        self.by_path[path] += 1
        record = RequestRecord(self._seq, path, fingerprint, time.time())
        self.log.append(record)
        return record

    def answered(self, record: RequestRecord, status: int) -> None:
        """Note the status the request is being answered with."""
        record.status = status
        self.by_status[status] += 1

    def finish(self, record: RequestRecord) -> None:
        """Note that the whole response has been sent."""
        record.finished = time.time()

    def roll(self, rate: float) -> bool:
        """True with probability `rate` (a fault happens)."""
        return rate > 0.0 and self._dice.random() < rate

    def authorized(self, authorization: str | None) -> bool:
        key = self.options.api_key
        return key is None or authorization == f"Bearer {key}"

    def reset(self) -> None:
        """Forget every count and log entry."""
        self.requests = 0
        self.by_path.clear()
        self.by_status.clear()
        self.log.clear()
        self._seq = 0

    def stats(self) -> dict[str, Any]:
        """The /_sim/stats document: {"requests", "by_path", "by_status"} (status keys as text)."""
        return {
            "requests": self.requests,
            "by_path": dict(self.by_path),
            "by_status": {str(status): count for status, count in self.by_status.items()},
        }

    def records(self) -> list[dict[str, Any]]:
        """The /_sim/requests document, oldest first."""
        return [record.as_dict() for record in self.log]


# ---------------------------------------------------------------------------------------------
# HTTP
# ---------------------------------------------------------------------------------------------

_NOT_JSON = object()
_SSE = "text/event-stream"


def _parse_body(raw: bytes) -> tuple[Any, dict[str, str] | None, str]:
    """(body, canonical parts of a dict body, fingerprint); body is _NOT_JSON when unparsable."""
    if not raw:
        return None, None, _sha256(b"")
    try:
        body = json.loads(raw)
    except ValueError:
        return _NOT_JSON, None, _sha256(raw)
    if isinstance(body, dict):
        parts = _canonical_parts(body)
        return body, parts, _sha256(_join_parts(parts, parts))
    return body, None, _sha256(_dumps(body))


def _json_bytes(payload: Any) -> bytes:
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()


def _format_seconds(seconds: float) -> str:
    return f"{seconds:.6f}".rstrip("0").rstrip(".")


@dataclass
class _Call:
    """One /v1 request in flight: its log record and parsed body."""

    sim: SimulatorState
    record: RequestRecord
    body: Any
    parts: dict[str, str] | None

    def reply(
        self,
        content: bytes,
        status: int = 200,
        headers: dict[str, str] | None = None,
        media_type: str = "application/json",
    ) -> Response:
        self.sim.answered(self.record, status)
        return Response(content, status, headers, media_type, background=BackgroundTask(self._sent))

    async def _sent(self) -> None:
        # Async on purpose: Starlette runs a sync background task in a worker thread.
        self.sim.finish(self.record)

    def error(
        self,
        status: int,
        message: str,
        error_type: str,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> Response:
        error = {"message": message, "type": error_type, "param": None, "code": code}
        return self.reply(_json_bytes({"error": error}), status, headers)

    def fault(self) -> Response | None:
        """A 429 or 500 when the dice say so."""
        options = self.sim.options
        if self.sim.roll(options.rate_limit_rate):
            logger.debug("simulating a 429 for request %d", self.record.seq)
            retry = {"Retry-After": _format_seconds(options.retry_after)}
            message = "Rate limit reached (simulated). Please try again later."
            return self.error(429, message, "requests", "rate_limit_exceeded", retry)
        if self.sim.roll(options.fail_rate):
            logger.debug("simulating a 500 for request %d", self.record.seq)
            message = "The server had an error while processing your request (simulated)."
            return self.error(500, message, "server_error")
        return None

    def malformed(self, payload: bytes, stream: bool) -> Response | None:
        """A 200 whose body is cut in half (never valid JSON) when the dice say so."""
        if not self.sim.roll(self.sim.options.malformed_rate):
            return None
        logger.debug("simulating a malformed body for request %d", self.record.seq)
        broken = payload[: len(payload) // 2]
        if stream:
            return self.reply(b"data: " + broken + b"\n\ndata: [DONE]\n\n", 200, None, _SSE)
        return self.reply(broken)


async def _open_call(
    request: Request, problem_of: Callable[[Any], str | None] | None = None
) -> tuple[_Call, Response | None]:
    """Log the request, check the API key and parse the body.

    Returns the call and, when the request is refused (401, or 400 for a non-JSON body), the
    response to send instead. Routes that simulate faults pass `problem_of`, which says what
    is wrong with a body (400), and then get the simulated fault, if the dice roll one.
    """
    sim: SimulatorState = request.app.state.sim
    body, parts, fingerprint = _parse_body(await request.body())
    call = _Call(sim, sim.begin(request.scope["path"], fingerprint), body, parts)
    if not sim.authorized(request.headers.get("authorization")):
        message = "Incorrect API key provided (simulated endpoint)."
        return call, call.error(401, message, "invalid_request_error", "invalid_api_key")
    if body is _NOT_JSON:
        message = "We could not parse the JSON body of your request."
        return call, call.error(400, message, "invalid_request_error")
    if problem_of is None:
        return call, None
    problem = problem_of(body)
    if problem:
        return call, call.error(400, problem, "invalid_request_error")
    return call, call.fault()


def _with_latency(
    handler: Callable[[Request], Awaitable[Response]],
) -> Callable[[Request], Awaitable[Response]]:
    """Answer `latency_ms` after the request arrived, the simulator's own work included: a
    fixed sleep on top of that work would queue concurrent requests behind each other's CPU,
    and a benchmark would measure the simulator instead of the client."""

    async def answer_on_time(request: Request) -> Response:
        latency = request.app.state.sim.options.latency_ms / 1000.0
        if latency <= 0.0:
            return await handler(request)
        loop = asyncio.get_running_loop()
        due = loop.time() + latency
        response = await handler(request)
        await asyncio.sleep(max(0.0, due - loop.time()))
        return response

    return answer_on_time


@_with_latency
async def _chat_completions(request: Request) -> Response:
    call, refusal = await _open_call(request, _chat_problem)
    if refusal is not None:
        return refusal
    body: dict[str, Any] = call.body
    reply = _simulate_chat(body, call.parts or {})
    completion_id = "chatcmpl-" + call.record.fingerprint[:24]
    if body.get("stream") is True:
        return _stream(call, completion_id, reply)
    payload = _json_bytes(_completion(completion_id, body["model"], reply))
    return call.malformed(payload, stream=False) or call.reply(payload)


def _usage(reply: SimulatedReply) -> dict[str, int]:
    return {
        "prompt_tokens": reply.prompt_tokens,
        "completion_tokens": reply.completion_tokens,
        "total_tokens": reply.prompt_tokens + reply.completion_tokens,
    }


def _completion(completion_id: str, model: str, reply: SimulatedReply) -> dict[str, Any]:
    message = {"role": "assistant", "content": reply.text}
    return {
        "id": completion_id,
        "object": "chat.completion",
        "created": _CREATED,
        "model": model,
        "system_fingerprint": _SYSTEM_FINGERPRINT,
        "choices": [
            {"index": 0, "message": message, "logprobs": None, "finish_reason": reply.finish_reason}
        ],
        "usage": _usage(reply),
    }


_WORDS_PER_CHUNK = 3
_CHUNK_RE = re.compile(rf"\s*\S+(?:\s+\S+){{0,{_WORDS_PER_CHUNK - 1}}}\s*")


def _stream(call: _Call, completion_id: str, reply: SimulatedReply) -> Response:
    """The reply as chat.completion.chunk events; possibly malformed or cut per the dice."""
    body: dict[str, Any] = call.body
    stream_options = body.get("stream_options")
    include_usage = isinstance(stream_options, dict) and stream_options.get("include_usage") is True
    head = {
        "id": completion_id,
        "object": "chat.completion.chunk",
        "created": _CREATED,
        "model": body["model"],
        "system_fingerprint": _SYSTEM_FINGERPRINT,
    }
    if include_usage:
        head["usage"] = None  # as OpenAI does: null on every chunk but the usage one

    def event(delta: dict[str, str], finish_reason: str | None = None) -> bytes:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
        return b"data: " + _json_bytes({**head, "choices": [choice]}) + b"\n\n"

    pieces = _CHUNK_RE.findall(reply.text) or ([reply.text] if reply.text else [])
    events = [event({"role": "assistant", "content": ""})]
    events += [event({"content": piece}) for piece in pieces]
    malformed = call.malformed(events[-1][len(b"data: ") : -2], stream=True)
    if malformed:
        return malformed
    if call.sim.roll(call.sim.options.cut_rate):
        logger.debug("simulating a cut stream for request %d", call.record.seq)
        call.sim.answered(call.record, 200)
        return StreamingResponse(_send(events[: 1 + len(pieces) // 2]), media_type=_SSE)
    events.append(event({}, reply.finish_reason))
    if include_usage:
        usage_chunk = {**head, "choices": [], "usage": _usage(reply)}
        events.append(b"data: " + _json_bytes(usage_chunk) + b"\n\n")
    events.append(b"data: [DONE]\n\n")
    call.sim.answered(call.record, 200)
    return StreamingResponse(_send(events, call), media_type=_SSE)


async def _send(events: list[bytes], call: _Call | None = None) -> AsyncIterator[bytes]:
    """Yield `events`; then mark `call` finished, which a client disconnect prevents.

    (A background task would not do: Starlette runs it even when the client went away.)
    """
    for event in events:
        yield event
    if call is not None:
        call.sim.finish(call.record)


@_with_latency
async def _embeddings(request: Request) -> Response:
    call, refusal = await _open_call(request, _embedding_problem)
    if refusal is not None:
        return refusal
    texts = call.body["input"]
    texts = [texts] if isinstance(texts, str) else texts
    tokens = sum(count_tokens(text) for text in texts)
    data = [
        {"object": "embedding", "index": index, "embedding": simulate_embedding(text)}
        for index, text in enumerate(texts)
    ]
    usage = {"prompt_tokens": tokens, "total_tokens": tokens}
    payload = _json_bytes(
        {"object": "list", "data": data, "model": call.body["model"], "usage": usage}
    )
    return call.malformed(payload, stream=False) or call.reply(payload)


_MODELS_PAYLOAD = _json_bytes(
    {
        "object": "list",
        "data": [
            {"id": model, "object": "model", "created": _CREATED, "owned_by": "promptlooper-sim"}
            for model in MODELS
        ],
    }
)


@_with_latency
async def _models(request: Request) -> Response:
    call, refusal = await _open_call(request)
    return refusal or call.reply(_MODELS_PAYLOAD)


async def _stats(request: Request) -> Response:
    return JSONResponse(request.app.state.sim.stats())


async def _requests(request: Request) -> Response:
    return JSONResponse(request.app.state.sim.records())


async def _reset(request: Request) -> Response:
    request.app.state.sim.reset()
    return JSONResponse({"reset": True})


async def _http_error(request: Request, exc: HTTPException) -> Response:
    """404/405 in OpenAI's error shape, so clients parse every failure the same way."""
    error = {"message": exc.detail, "type": "invalid_request_error", "param": None, "code": None}
    return JSONResponse({"error": error}, exc.status_code, headers=exc.headers)


def create_app(options: SimulatorOptions = DEFAULT_OPTIONS) -> Starlette:
    """The simulated endpoint as a Starlette app; `app.state.sim` is its SimulatorState."""
    app = Starlette(
        routes=[
            Route("/v1/models", _models, methods=["GET"]),
            Route("/v1/chat/completions", _chat_completions, methods=["POST"]),
            Route("/v1/embeddings", _embeddings, methods=["POST"]),
            Route("/_sim/stats", _stats, methods=["GET"]),
            Route("/_sim/requests", _requests, methods=["GET"]),
            Route("/_sim/reset", _reset, methods=["POST"]),
        ],
        exception_handlers={HTTPException: _http_error},
    )
    app.state.sim = SimulatorState(options)
    return app


# ---------------------------------------------------------------------------------------------
# Running it
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RunningSimulator:
    """A simulated endpoint listening on host:port."""

    host: str
    port: int
    state: SimulatorState

    @property
    def base_url(self) -> str:
        """The OpenAI base URL, e.g. http://127.0.0.1:8123/v1."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/v1"


@contextlib.asynccontextmanager
async def simulated_endpoint(
    options: SimulatorOptions = DEFAULT_OPTIONS, host: str = "127.0.0.1", port: int = 0
) -> AsyncIterator[RunningSimulator]:
    """Serve the simulated endpoint in the current event loop until the block exits.

    Port 0 picks a free port; the server is accepting connections when the block starts.
    """
    app = create_app(options)
    async with serve_app(app, host, port) as bound_port:
        yield RunningSimulator(host, bound_port, app.state.sim)


def run_simulated_endpoint(host: str, port: int, options: SimulatorOptions) -> None:
    """Serve until Ctrl-C or SIGTERM (blocking); announces the base URL on stderr."""
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve_until_signalled(host, port, options))


async def _serve_until_signalled(host: str, port: int, options: SimulatorOptions) -> None:
    stop = asyncio.Event()
    # Where handlers cannot be installed, Ctrl-C ends it via KeyboardInterrupt instead.
    with on_stop_signals(stop.set):
        async with simulated_endpoint(options, host, port) as running:
            print(f"Simulated endpoint on {running.base_url}", file=sys.stderr, flush=True)
            await stop.wait()
