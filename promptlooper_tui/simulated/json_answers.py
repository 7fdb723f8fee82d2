"""JSON answers with the keys a prompt or schema asks for, filled from the input's values."""

from __future__ import annotations

import json
import random
import re
from collections import deque
from typing import Any

from .judge_answers import judge_rating, judge_reason
from .ordinary_answers import ordinary_answer
from .prompt import STOPWORDS, Prompt

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
_CAP_STOPWORDS = STOPWORDS | {"extract", "json", "format", "text", "input", "output", "data"}
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


def json_answer(
    prompt: Prompt,
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
    rating = judge_rating(prompt, quality, rng) if rated else 0
    answer: dict[str, Any] = {}
    for key, kind in fields:
        if kind == "score":
            answer[key] = rating
        elif kind == "reason":
            answer[key] = judge_reason(rating)
        elif kind == "text":
            answer[key] = ordinary_answer(prompt, quality, rng, sentences=1)
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
    prompt: Prompt, response_format: Any, judge: bool
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
