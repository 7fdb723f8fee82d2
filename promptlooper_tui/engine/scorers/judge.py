"""The LLM-judge scorer: a model rates the output 1-10 from a user-written prompt."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from jinja2 import TemplateError, TemplateSyntaxError

from ...domain.errors import BadInput, TemplateLimitExceeded
from ...domain.experiment import LlmJudgeScorerSpec
from ..templates import compile_template
from .base import ScoreContext, Scorer, ScorerError, register
from .format import extract_json

#: The judge's system message. It names the scale so any model answers with a 1-10 rating.
JUDGE_SYSTEM = (
    "You are an impartial evaluator. Rate the response on a scale of 1 to 10, where 10 is "
    "best, and state the rating clearly."
)
#: Request parameters the judge gets unless the spec's `params` say otherwise.
DEFAULT_JUDGE_PARAMS: Mapping[str, Any] = {"temperature": 0}
_QUOTE_CHARS = 80

# A rating: a number (sign kept so "-1" is rejected, not read as 1), optionally over a scale
# ("7/10", "7 out of 10"); not part of a longer number, nor the start of a range like "1-10".
# Quantifiers are possessive or bounded so no answer can make matching slow.
_NUMBER = (
    r"(?<![\w.])(?P<n>-?\d++(?:\.\d++)?)(?!\.\d)(?!\s{0,3}(?:-|\u2013|to)\s{0,3}\d)"
    r"(?:\s{0,3}(?:/|out\s{1,3}of)\s{0,3}(?P<d>\d++(?:\.\d++)?))?"
)
# Markup a judge may wrap the number in: **8**, [[8]], (8), _8_.
_OPEN = r"[\s*_\[(]{0,8}"
# "Rating: 7", "**Score:** 8", "score of 7", "Rating (1-10): 7", "Final verdict = [[6]]".
_LABELLED = re.compile(
    r"\b(?:rating|score|grade|verdict)s?\b(?:\s{0,3}\([^)\n]{0,30}\))?[\s*_:=]{0,8}"
    r"(?:(?:[-\u2013]|is|of|would\s{1,3}be)\s)?" + _OPEN + _NUMBER,
    re.IGNORECASE,
)
_DOUBLE_BRACKETS = re.compile(r"\[\[\s{0,3}" + _NUMBER + r"\s{0,3}\]\]")
_OVER_TEN = re.compile(
    r"(?<![\w.])(?P<n>-?\d++(?:\.\d++)?)\s{0,3}(?:/|out\s{1,3}of)\s{0,3}(?P<d>10)\b"
)
# "I'd give this a 7", "deserves a 9", "I would rate the answer 6".
_VERBAL = re.compile(
    r"\b(?:give[sn]?|giving|rate[sd]?|deserves?|earns?|merits?|warrants?|award(?:s|ed)?)"
    r"\s{1,3}(?:(?:it|them|(?:this|that|the)(?:\s{1,3}\w++)?)\s{1,3})?(?:(?:a|an|as)\s{1,3})?"
    + _OPEN
    + _NUMBER,
    re.IGNORECASE,
)
# Numbers that are never the rating: the scale itself and step or criterion numbers.
_NOT_RATINGS = re.compile(
    r"\b1\s{0,3}(?:-|\u2013|to)\s{0,3}10\b|\b(?:step|criterion|point)\s{1,3}\d+\b", re.IGNORECASE
)
_ANY_NUMBER = re.compile(r"(?<![\w.])-?\d++(?:\.\d++)?(?!\w|\.\d)")
_RATING_KEY = re.compile(r"(?:^|_)(?:score|rating|grade)$", re.IGNORECASE)


def parse_rating(text: str) -> float | None:
    """The 1-10 rating a judge's answer gives, or None when it gives none (or one out of range).

    Looks, in order, for: a JSON object with a "score"/"rating"/"grade" key; a labelled
    rating ("Rating: 7", "Score: 7/10", "Rating: [[6]]"); a number in double brackets; "x/10"
    or "x out of 10"; a verbal rating ("I'd give this a 7", "deserves a 9"); else the only
    number in the answer (ignoring the scale "1-10" and "Step 1"). Within a kind the last one
    wins, so a final verdict beats earlier working. The first kind found decides: a rating
    outside 1..10, or over a scale other than 10 ("3/5"), gives None rather than a clamp.
    """
    present, rating = _json_rating(text)
    if present:
        return rating
    for pattern in (_LABELLED, _DOUBLE_BRACKETS, _OVER_TEN, _VERBAL):
        matches = list(pattern.finditer(text))
        if matches:
            return _rating(matches[-1].group("n"), matches[-1].group("d"))
    numbers = {m.group() for m in _ANY_NUMBER.finditer(_NOT_RATINGS.sub(" ", text))}
    if len({float(n) for n in numbers}) == 1:
        return _rating(numbers.pop(), None)
    return None


def _rating(number: str, scale: str | None) -> float | None:
    """`number` as a rating when it lies in 1..10 (and `scale`, if any, is 10); else None."""
    if scale is not None and float(scale) != 10.0:
        return None
    value = float(number)
    return value if 1.0 <= value <= 10.0 else None


def _json_rating(text: str) -> tuple[bool, float | None]:
    """(whether a JSON object in `text` has a rating key, the 1-10 rating it holds or None)."""
    if "{" not in text:
        return False, None
    found = extract_json(text)
    if found is None or not isinstance(found[0], dict):
        return False, None
    for key, value in found[0].items():
        if not _RATING_KEY.search(str(key)):
            continue
        if isinstance(value, bool):
            return True, None
        if isinstance(value, int | float):
            return True, _rating(str(value), None)
        return True, parse_rating(value) if isinstance(value, str) else None
    return False, None


@register
class LlmJudgeScorer(Scorer):
    """A judge model rates the output 1-10; score = (rating - 1) / 9.

    `prompt` is a Jinja2 template (sandboxed, undefined variables are errors) rendered with
    `output`, `item` (the dataset row), `reference` and `input` (the item's fields of those
    names, or None) and `params` (the run's parameters). It is sent as the user message, after
    a fixed system message asking for a 1-10 rating, to `model` on `endpoint` (None: the
    experiment's endpoint) with `params` (temperature 0 unless set). The call goes through
    the call cache and is charged to the run. The answer is read with `parse_rating`.

    Raises BadInput at construction when the prompt has a syntax error; ScorerError when the
    run has no LLM access, the prompt fails to render (or breaks a template limit, see
    engine/sandbox.py), or the answer holds no 1-10 rating.
    """

    type = "llm_judge"
    spends_tokens = True

    def __init__(self, spec: LlmJudgeScorerSpec) -> None:
        super().__init__(spec)
        try:
            self._template = compile_template(spec.prompt)
        except TemplateSyntaxError as exc:
            raise BadInput(
                f"llm_judge scorer: prompt template syntax error (line {exc.lineno}): {exc.message}"
            ) from None
        self._request = {"model": spec.model, **DEFAULT_JUDGE_PARAMS, **spec.params}

    def render(self, output: str, context: ScoreContext) -> list[dict[str, str]]:
        """The chat messages sent to the judge for `output`."""
        item = context.item
        try:
            prompt = self._template.render(
                output=output,
                item=item,
                reference=item.get("reference"),
                input=item.get("input"),
                params=context.params,
            )
        except (TemplateError, TemplateLimitExceeded, KeyError, TypeError) as exc:
            raise ScorerError(f"judge prompt: template error: {exc}") from None
        return [{"role": "system", "content": JUDGE_SYSTEM}, {"role": "user", "content": prompt}]

    async def score(self, input: Any, output: str, context: ScoreContext) -> float:
        if context.llm is None:
            raise ScorerError("the llm_judge scorer needs LLM access")
        messages = self.render(output, context)
        answer = await context.llm.chat(self.spec.endpoint, messages, dict(self._request))
        rating = parse_rating(answer)
        if rating is None:
            quoted = " ".join(answer.split())
            if len(quoted) > _QUOTE_CHARS:
                quoted = quoted[:_QUOTE_CHARS] + "..."
            raise ScorerError(f"no 1-10 rating in the judge's answer: {quoted!r}")
        return (rating - 1.0) / 9.0
