"""Reading a chat request: its text, keywords, and how good a model its name promises."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from promptlooper_tui.domain.tokens import estimate_tokens

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
STOPWORDS = frozenset(_STOPWORD_TEXT.split())
_WORD_RE = re.compile(r"[A-Za-z][A-Za-z0-9'\u2019-]*[A-Za-z0-9]|[A-Za-z]")
LOWER_TOKEN_RE = re.compile(r"\w+")
_QUALITY_TIERS = (
    (("large", "big", "pro", "gpt-4", "70b"), 0.9),
    (("medium", "8b"), 0.72),
    (("small", "mini", "tiny", "1b"), 0.5),
)
_DEFAULT_QUALITY = 0.65


@dataclass(frozen=True)
class Prompt:
    """The text of a chat request, prepared once for the answer builders."""

    all_text: str  # every message's content, one per line
    lower: str
    last_user: str  # the last user message (the last message if no user spoke)
    tokens: int

    @classmethod
    def from_messages(cls, messages: list[dict[str, Any]]) -> Prompt:
        contents = [_content_text(message.get("content")) for message in messages]
        user = [
            text
            for message, text in zip(messages, contents, strict=True)
            if message["role"] == "user"
        ]
        all_text = "\n".join(contents)
        tokens = sum(estimate_tokens(text) + 4 for text in contents)
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


def model_quality(model: str) -> float:
    """How good a model its name promises, 0..1: the chance it mentions each keyword."""
    name = model.lower()
    for markers, quality in _QUALITY_TIERS:
        if any(marker in name for marker in markers):
            return quality
    return _DEFAULT_QUALITY


def keywords(text: str) -> list[str]:
    """Content words of `text` in order, deduplicated: 4+ letters or Capitalized, no stopwords."""
    seen: dict[str, str] = {}
    for word in _WORD_RE.findall(text):
        lower = word.lower()
        if lower not in seen and lower not in STOPWORDS and (len(word) >= 4 or word[0].isupper()):
            seen[lower] = word
    return list(seen.values())
