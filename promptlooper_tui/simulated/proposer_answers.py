"""Answers to "write N new prompt templates": the simulated proposer of evolve sweeps.

Shown the best templates so far (with scores) and the lowest-scored items, a real optimiser LLM
rewrites the templates, mostly for the better when it is strong. This one prepends an
instruction to a parent template: with probability `quality` a helpful cue of `craft` the
parent lacks (one that cures the failures shown, when it can), else a neutral or a harmful
sentence; now and then, more often for a weak model, a template the engine must reject.
Prepending keeps the parent's variables and leaves the subject after the last colon last.
"""

from __future__ import annotations

import json
import random
import re
from dataclasses import dataclass

from .craft import HARMFUL_CUES, HELPFUL_CUES
from .prompt import Prompt

#: A request for new prompt templates (in its last user message), and how many.
PROPOSER_RE = re.compile(r"\bwrite (\d{1,4}) new prompt templates\b", re.IGNORECASE)
MAX_PROPOSALS = 20
_TEMPLATE_HEAD_RE = re.compile(
    r'<template name="(?P<name>[^\n]{0,200}?)" score="[^"\n]{0,40}" items="\d{0,9}">\n'
)
_TEMPLATE_END = "\n</template>"
#: Templates tried before (not rewritten, only not repeated).
_TRIED_HEAD_RE = re.compile(
    r'<tried name="(?P<name>[^\n]{0,200}?)" score="[^"\n]{0,40}" items="\d{0,9}">\n'
)
_TRIED_END = "\n</tried>"
#: Longer shown templates are not rewritten (the engine accepts at most 8,000 characters).
_MAX_PARENT_CHARS = 8_000
_DISCLAIMER_FAILURE_RE = re.compile(r"<output>\s*As an AI", re.IGNORECASE)
#: Scorers that report missing keywords, or a keyword scorer short of 1 ("keyword: 0.67").
_MISSING_FAILURE_RE = re.compile(
    r"<scorers>[^\n]*?(?:\bmissing\b|\bkeyword[^:;\n]{0,40}: (?:0\.\d+|0\b|failed))",
    re.IGNORECASE,
)
_EXPRESSION_RE = re.compile(r"\{\{.*?\}\}", re.DOTALL)
#: How often each of the best three templates is the parent: the best most often.
_PARENT_WEIGHTS = (5, 3, 2)
#: The chance of a broken proposal is (1 - quality) times this.
_BROKEN_RATE = 0.25
_HARMFUL_SHARE = 0.4  # of the edits that are not helpful
_NEUTRAL_EDITS = (
    ("Read the text carefully before you start.", "Asks for a careful reading first."),
    ("Write for a busy reader.", "Aims the answer at a busy reader."),
    ("You are an experienced technical writer.", "Gives the model a writer's role."),
    ("Keep the tone neutral.", "Sets a neutral tone."),
    ("Stay close to the task.", "Keeps the model on the task."),
)
_INVENTED_FIELDS = ("context", "background", "notes")
#: An answer held to one sentence has room for three keywords (`ordinary_answers`): when the
#: failures show missing ones, a second sentence is the structural cure a strong proposer finds.
_ONE_SENTENCE_RE = re.compile(r"\b(?:in )?(?:one|1|a single|single)[ -]sentence\b", re.IGNORECASE)
_ROOM_RATIONALE = (
    "Allows two sentences, so the answer has room for the names the low-scored answers left out."
)


@dataclass(frozen=True)
class _Shown:
    """A template block of the request: the prompt's name and its text, verbatim."""

    name: str
    text: str


def proposer_answer(prompt: Prompt, quality: float, rng: random.Random) -> str:
    """`{"proposals": [{"template", "parent", "rationale"}, ...]}` as JSON: as many as the
    request asks (at most 20), each a rewrite of one of the best three templates shown and
    none the same as a shown one; no proposals when no template block can be read."""
    request = prompt.last_user
    match = PROPOSER_RE.search(request)
    count = min(MAX_PROPOSALS, int(match.group(1))) if match else 0
    shown = _shown_templates(request)
    if not shown:
        return json.dumps({"proposals": []})
    fixes = _wanted_fixes(request)
    parents = shown[: len(_PARENT_WEIGHTS)]
    weights = _PARENT_WEIGHTS[: len(parents)]
    # Neither a shown template nor one tried before (which the request lists) is written again.
    taken = {t.text.strip() for t in (*shown, *_blocks(request, _TRIED_HEAD_RE, _TRIED_END))}
    proposals: list[dict[str, str]] = []
    for _ in range(count):
        parent = rng.choices(parents, weights)[0]
        text, rationale = _edit(parent.text, fixes, quality, rng)
        # Each sentence lengthens the text, so a new one turns up within len(taken) steps.
        while text.strip() in taken:
            text = _prepend(rng.choice(_NEUTRAL_EDITS)[0], text)
        taken.add(text.strip())
        proposals.append({"template": text, "parent": parent.name, "rationale": rationale})
    return json.dumps({"proposals": proposals}, ensure_ascii=False)


def _shown_templates(request: str) -> list[_Shown]:
    """The readable template blocks, in order (best first); a block runs to the first
    `</template>` line after its head."""
    return _blocks(request, _TEMPLATE_HEAD_RE, _TEMPLATE_END)


def _blocks(request: str, head_re: re.Pattern[str], end_mark: str) -> list[_Shown]:
    """The readable blocks of one kind, in order: each runs from its head to the first end
    line after it."""
    shown: list[_Shown] = []
    position = 0
    while head := head_re.search(request, position):
        end = request.find(end_mark, head.end())
        if end == -1:
            break
        text = request[head.end() : end]
        if text.strip() and len(text) <= _MAX_PARENT_CHARS:
            shown.append(_Shown(_unescape(head.group("name")), text))
        position = end + len(end_mark)
    return shown


def _unescape(name: str) -> str:
    """A name as the engine quotes it in an attribute (`&` and `"` escaped), unquoted."""
    return name.replace("&quot;", '"').replace("&amp;", "&")


def _wanted_fixes(request: str) -> set[str]:
    """The failures shown that a cue cures: answers that start with a disclaimer, scorers that
    report missing keywords."""
    wanted: set[str] = set()
    if _DISCLAIMER_FAILURE_RE.search(request):
        wanted.add("disclaimer")
    if _MISSING_FAILURE_RE.search(request):
        wanted.add("missing")
    return wanted


def _edit(template: str, fixes: set[str], quality: float, rng: random.Random) -> tuple[str, str]:
    """One rewrite of `template` and the proposer's one-sentence reason for it."""
    if rng.random() < (1.0 - quality) * _BROKEN_RATE:
        return _broken(template, rng)
    lower = template.lower()
    if rng.random() < quality:
        if "missing" in fixes and _ONE_SENTENCE_RE.search(template) and rng.random() < 0.5:
            return _ONE_SENTENCE_RE.sub("in two sentences", template, count=1), _ROOM_RATIONALE
        lacking = [cue for cue in HELPFUL_CUES if not cue.pattern.search(lower)]
        curing = [cue for cue in lacking if cue.fixes in fixes]
        if lacking:
            cue = rng.choice(curing or lacking)
            return _prepend(cue.instruction, template), cue.rationale
    harmful = [cue for cue in HARMFUL_CUES if not cue.pattern.search(lower)]
    if harmful and rng.random() < _HARMFUL_SHARE:
        cue = rng.choice(harmful)
        return _prepend(cue.instruction, template), cue.rationale
    sentence, rationale = rng.choice(_NEUTRAL_EDITS)
    return _prepend(sentence, template), rationale


def _broken(template: str, rng: random.Random) -> tuple[str, str]:
    """A rewrite the engine must reject: an unclosed expression or a variable no prompt has."""
    expressions = _EXPRESSION_RE.findall(template)
    if expressions and rng.random() < 0.5:
        unclosed = expressions[0][:-1]
        return (
            _prepend(f"Start from {unclosed}.", template),
            "Puts the input first so the model reads it before the instruction.",
        )
    field = next(
        (name for name in _INVENTED_FIELDS if f"item.input.{name}" not in template), "context"
    )
    return (
        _prepend(f"Use the background in {{{{ item.input.{field} }}}}.", template),
        "Adds the item's background, which the low-scored answers seemed to lack.",
    )


def _prepend(sentence: str, template: str) -> str:
    """`template` with `sentence` first: its variables and its closing subject stay as they are."""
    return f"{sentence} {template}"
