"""The format scorer: is the output JSON, markdown, the right length, or schema-valid JSON?"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

from ...domain.errors import BadInput
from ...domain.experiment import FormatScorerSpec
from ...domain.tokens import estimate_tokens
from .base import ScoreContext, Scorer, register

_DECODER = json.JSONDecoder()

# A fenced block tagged json (or untagged); its content is tried as JSON.
_JSON_FENCE = re.compile(r"```[ \t]*(?:json)?[ \t]*\r?\n(.*?)```", re.IGNORECASE | re.DOTALL)

# How many `{` (and `[`) positions to try decoding from in prose: bounds the cost on long
# outputs full of braces that are not JSON.
_MAX_JSON_STARTS = 8

_MARKDOWN_STRUCTURE = re.compile(
    "|".join(
        (
            r"^ {0,3}#{1,6}[ \t]+\S",  # heading
            r"^[ \t]*(?:[-*+]|\d{1,9}[.)])[ \t]+\S",  # bullet or numbered list item
            r"\*\*\S(?:[^*\n]*\S)?\*\*|__\S(?:[^_\n]*\S)?__",  # bold
            r"(?<![*\w])\*[^*\s](?:[^*\n]*[^*\s])?\*(?![*\w])",  # *italic* (not 3*4*5)
            r"(?<![_\w])_[^_\s](?:[^_\n]*[^_\s])?_(?![_\w])",  # _italic_ (not snake_case)
            r"`[^`\n]+`",  # code span
            r"^ {0,3}(?:```|~~~)",  # code fence
            # Link; the text excludes "[" so a long run of "[" cannot make the search quadratic.
            r"\[[^\[\]\n]+\]\([^()\s]+(?:[ \t]+\"[^\"\n]*\")?\)",
            r"^[ \t]*\|?[ \t]*:?-{3,}:?[ \t]*(?:\|[ \t]*:?-{3,}:?[ \t]*)+\|?[ \t]*$",  # table rule
        )
    ),
    re.MULTILINE,
)
_FENCE_MARKER = re.compile(r"^ {0,3}(```|~~~)", re.MULTILINE)


def extract_json(text: str) -> tuple[Any, bool] | None:
    """The JSON in `text` as (value, whole), or None if there is none.

    `whole` is True when the stripped text is JSON in its entirety. Otherwise the value is a
    JSON object or array found in a fenced block (```json ... ``` or an untagged fence), else
    the longest object/array starting at one of the first `{` or `[` of the text (so a JSON
    object surrounded by prose is found, and a stray "[1]" does not hide it).
    """
    try:
        return json.loads(text.strip()), True
    except ValueError:
        pass
    for match in _JSON_FENCE.finditer(text):
        try:
            value = json.loads(match.group(1))
        except ValueError:
            continue
        if isinstance(value, dict | list):
            return value, False
    best: tuple[Any, int] | None = None
    for opener in "{[":
        found = _decode_from(text, opener)
        if found is not None and (best is None or found[1] > best[1]):
            best = found
    return None if best is None else (best[0], False)


def _decode_from(text: str, opener: str) -> tuple[Any, int] | None:
    """(value, length) of the first JSON value decodable at one of the first `opener`s."""
    start = text.find(opener)
    for _ in range(_MAX_JSON_STARTS):
        if start < 0:
            return None
        try:
            value, end = _DECODER.raw_decode(text, start)
        except ValueError:
            start = text.find(opener, start + 1)
            continue
        return value, end - start
    return None


def _fences_balanced(text: str) -> bool:
    """Whether every code fence opened (``` or ~~~) is closed by the same marker."""
    open_marker: str | None = None
    for match in _FENCE_MARKER.finditer(text):
        marker = match.group(1)
        if open_marker is None:
            open_marker = marker
        elif marker == open_marker:
            open_marker = None
    return open_marker is None


@register
class FormatScorer(Scorer):
    """Scores the output's form, by `format`:

    - json: 1.0 when the whole (stripped) output is JSON; 0.5 when a JSON object or array can
      be extracted (a ```json fenced block, or an object/array surrounded by prose); else 0.0.
    - markdown: 1.0 when the output uses markdown structure (a heading, list item, bold or
      italic emphasis, code block or span, link, or table) and its code fences are balanced;
      0.5 when it has an unclosed code fence; 0.0 for plain text.
    - length: n = estimate_tokens(output); 1.0 inside [min_tokens, max_tokens]; below,
      n / min_tokens; above, max(0, 1 - (n - max_tokens) / max_tokens), i.e. 0 at twice the
      bound. Either bound may be omitted.
    - structure: the JSON extracted as for `json` (0.0 when there is none), validated against
      `schema`: 1.0 when valid, else 0.5 * (1 - min(1, errors / max(1, checks))), where
      errors counts validation errors and checks = the schema's top-level `required`
      properties + its top-level `properties` that declare a `type`. So invalid JSON never
      scores above 0.5, and scores less the more of those checks it fails.

    Raises BadInput at construction when `schema` is not a valid JSON Schema.
    """

    type = "format"

    def __init__(self, spec: FormatScorerSpec) -> None:
        super().__init__(spec)
        self._min_tokens = spec.min_tokens
        self._max_tokens = spec.max_tokens
        rules: dict[str, Callable[[str], float]] = {
            "json": self._json,
            "markdown": self._markdown,
            "length": self._length,
            "structure": self._structure,
        }
        self._rule = rules[spec.format]
        if spec.format == "structure":
            self._compile_schema(spec.schema_ or {})

    def _compile_schema(self, schema: dict[str, Any]) -> None:
        # Imported here: jsonschema is loaded only by experiments that check a structure.
        from jsonschema import SchemaError
        from jsonschema.validators import validator_for

        validator_class = validator_for(schema)
        try:
            validator_class.check_schema(schema)
        except SchemaError as exc:
            raise BadInput(f"format scorer: invalid JSON Schema: {exc.message}") from None
        self._validator = validator_class(schema)
        properties = schema.get("properties", {})
        typed = sum(isinstance(p, dict) and "type" in p for p in properties.values())
        self._checks = len(schema.get("required", [])) + typed

    async def score(self, input: Any, output: str, context: ScoreContext) -> float:
        return self._rule(output)

    def _json(self, output: str) -> float:
        found = extract_json(output)
        if found is None:
            return 0.0
        return 1.0 if found[1] else 0.5

    def _markdown(self, output: str) -> float:
        if _MARKDOWN_STRUCTURE.search(output) is None:
            return 0.0
        return 1.0 if _fences_balanced(output) else 0.5

    def _length(self, output: str) -> float:
        n = estimate_tokens(output)
        if self._min_tokens is not None and n < self._min_tokens:
            return n / self._min_tokens
        if self._max_tokens is not None and n > self._max_tokens:
            return max(0.0, 1.0 - (n - self._max_tokens) / self._max_tokens)
        return 1.0

    def _structure(self, output: str) -> float:
        found = extract_json(output)
        if found is None:
            return 0.0
        errors = sum(1 for _ in self._validator.iter_errors(found[0]))
        if errors == 0:
            return 1.0
        return 0.5 * (1.0 - min(1.0, errors / max(1, self._checks)))
