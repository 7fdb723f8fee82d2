"""Evolve's proposer: one LLM call per generation that writes the next prompt templates.

The call goes through the sweep's gateway like any run's, so it is cached (a resumed sweep
does not pay again for an answer it received), rate-limited and charged to the token budget.
Its answer is untrusted text: read as JSON leniently (a code fence or words around the object
are fine), each proposal checked (`evolve_prompts.ProposalCheck`), and every proposal stored
with its lineage, accepted ones under a new prompt name, rejected ones with the reason. An
answer that cannot be read rejects the generation's proposals, not the sweep; an endpoint
that does not answer fails the sweep (resumable), as a run's stage would.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ..domain.errors import EndpointError, PromptLooperError
from ..domain.experiment import API_PARAMETERS, ExperimentSpec, SweepSettings
from ..domain.tokens import estimate_tokens
from ..store import evolve as store
from ..store.database import Database
from ..store.timestamps import now_iso
from .budget import TokenBudget
from .endpoints import ResolvedEndpoint
from .evolve import Brief
from .evolve_prompts import ProposalCheck
from .gateway import LLMGateway, RunMeter

#: Lowest-scored training items of the leader shown to the proposer.
FAILURES_SHOWN = 3
#: Characters of one output shown (the start of it).
OUTPUT_SHOWN = 1_500
#: Characters of a rationale kept.
RATIONALE_CHARS = 500
#: The proposer's answer length when its params do not say.
DEFAULT_MAX_TOKENS = 2_000
DEFAULT_TEMPERATURE = 0.7

_SYSTEM = (
    "You are an expert prompt engineer. You rewrite prompt templates so that a model's "
    "answers to them score higher."
)
_FENCE = re.compile(r"^```[a-zA-Z]*\s*|\s*```$")
_OPENER = re.compile(r"[{\[]")
#: Places an answer's JSON may start at that are tried, at most (each try is bounded by the
#: answer's length, which the adapter bounds).
JSON_STARTS_TRIED = 50


class OverBudget(PromptLooperError):
    """The proposer's call would not fit in the sweep's token budget."""


def proposer_request(settings: SweepSettings) -> dict[str, Any]:
    """The request parameters of the proposer's call."""
    assert settings.proposer is not None
    params = {"temperature": DEFAULT_TEMPERATURE, "max_tokens": DEFAULT_MAX_TOKENS}
    params.update(settings.proposer.params)
    params["model"] = settings.proposer.model
    return {k: v for k, v in params.items() if k in API_PARAMETERS}


def proposer_messages(
    brief: Brief,
    settings: SweepSettings,
    variables: Sequence[str],
    scorers: Sequence[str],
    failures: Sequence[tuple[str, store.Failure]],
) -> list[dict[str, str]]:
    """The chat messages of generation `brief.generation`'s call."""
    names = ", ".join("{{ " + v + " }}" for v in variables) or "none"
    lines = [
        f"Generation {brief.generation} of {settings.generations}. Write {settings.proposals} "
        "new prompt templates for the task below that will score higher than the best ones "
        "so far.",
        "",
        "Each template is Jinja2, rendered once per dataset item. Use only these variables, "
        f"written exactly so: {names}. Invent no others, and keep the item's text in the "
        "template.",
        "",
        f"A score is the weighted mean of these scorers: {', '.join(scorers) or 'none'}, "
        "from 0 (worst) to 1 (best), averaged over the training items.",
        "",
        "The best templates so far, best first:",
        "",
    ]
    for shown in brief.best:
        lines += [
            f'<template name="{_attribute(shown.name)}" score="{shown.score:.3f}" '
            f'items="{shown.n}">',
            shown.template,
            "</template>",
            "",
        ]
    if brief.tried:
        lines += ["Templates tried before that scored lower (write something else):", ""]
    for tried in brief.tried:
        lines += [
            f'<tried name="{_attribute(tried.name)}" score="{tried.score:.3f}" items="{tried.n}">',
            tried.template,
            "</tried>",
            "",
        ]
    if failures:
        lines += ["The items the best template scored lowest on:", ""]
    for name, failure in failures:
        scores = "; ".join(
            f"{scorer}: {'failed' if value is None else f'{value:.2f}'}"
            for scorer, value in failure.scores
        )
        lines += [
            f'<failure template="{_attribute(name)}" item="{failure.item_index}" '
            f'score="{failure.score:.3f}">',
            "<output>",
            failure.output[:OUTPUT_SHOWN],
            "</output>",
            f"<scorers>{scores}</scorers>",
            "</failure>",
            "",
        ]
    lines += [
        "Answer with JSON only, in this shape:",
        '{"proposals": [{"template": "the new template", "parent": "the name of the '
        'template it improves", "rationale": "one sentence: what it changes and why"}]}',
    ]
    return [{"role": "system", "content": _SYSTEM}, {"role": "user", "content": "\n".join(lines)}]


def _attribute(text: str) -> str:
    return text.replace("&", "&amp;").replace('"', "&quot;")


def read_answer(text: str, limit: int) -> tuple[list[Any], str | None]:
    """The proposals of an answer (at most `limit`), or ([], why it could not be read).

    The JSON may come with words around it ("Here are [2] new templates: {...}"): each `{` or
    `[` (the first `JSON_STARTS_TRIED`) is tried as the start of a value, and the first object
    with a "proposals" list, or list of objects, is the answer."""
    body = _FENCE.sub("", text.strip())
    decoder = json.JSONDecoder()
    problem = "the answer holds no JSON"
    for opener in itertools.islice(_OPENER.finditer(body), JSON_STARTS_TRIED):
        try:
            data, _ = decoder.raw_decode(body, opener.start())
        except (ValueError, RecursionError) as exc:  # deep nesting raises RecursionError
            problem = f"the answer is not valid JSON: {exc}"
            continue
        if isinstance(data, dict):
            if isinstance(data.get("proposals"), list):
                return data["proposals"][:limit], None
            problem = 'the answer has no "proposals" list'
        elif isinstance(data, list) and data and all(isinstance(e, dict) for e in data):
            return data[:limit], None
    return [], problem


class Proposer:
    """Asks the proposer model for each generation's templates, once (`ProposalSource`)."""

    def __init__(
        self,
        *,
        db: Database,
        sweep_id: str,
        spec: ExperimentSpec,
        settings: SweepSettings,
        parameter: str,
        gateway: LLMGateway,
        endpoint: ResolvedEndpoint,
        budget: TokenBudget,
        announce: Callable[[int, list[store.Proposal], bool], None],
    ) -> None:
        self._db = db
        self._sweep_id = sweep_id
        self._spec = spec
        self._settings = settings
        self._gateway = gateway
        self._endpoint = endpoint
        self._budget = budget
        self._announce = announce
        self._check = ProposalCheck(spec, parameter)
        self._scorers = [
            f"{spec.scorer_name(i)} (weight {s.weight:g})"
            for i, s in enumerate(spec.scorers)
            if s.type != "human"
        ]
        self._stored: dict[int, list[store.Proposal]] | None = None

    async def propose(self, brief: Brief) -> list[store.Proposal]:
        stored = await self._load()
        if brief.generation in stored:
            return stored[brief.generation]
        failures = await store.lowest_runs(
            self._db, self._sweep_id, brief.leader_key, brief.trained, FAILURES_SHOWN
        )
        leader_prompt = brief.best[0].name if brief.best else ""
        messages = proposer_messages(
            brief,
            self._settings,
            self._check.variables,
            self._scorers,
            [(leader_prompt, failure) for failure in failures],
        )
        request = proposer_request(self._settings)
        text, call = await self._call(brief.generation, messages, request)
        raw, error = read_answer(text, self._settings.proposals)
        proposals = self._judge(brief, raw)
        if error is not None:
            call = _with_error(call, error)
        await self._db.write(
            store.generation_statements(self._sweep_id, call, proposals, now_iso())
        )
        stored[brief.generation] = proposals
        self._announce(brief.generation, proposals, call.cached)
        return proposals

    async def _load(self) -> dict[int, list[store.Proposal]]:
        if self._stored is None:
            calls = await store.generations(self._db, self._sweep_id)
            self._stored = {generation: [] for generation in calls}
            for proposal in await store.proposals(self._db, self._sweep_id):
                self._stored[proposal.generation].append(proposal)
        return self._stored

    async def _call(
        self, generation: int, messages: list[dict[str, str]], request: dict[str, Any]
    ) -> tuple[str, store.GenerationCall]:
        estimate = sum(estimate_tokens(m["content"]) for m in messages) + int(
            request.get("max_tokens") or DEFAULT_MAX_TOKENS
        )
        if not self._budget.try_reserve(estimate):
            raise OverBudget(f"generation {generation}'s proposer call does not fit the budget")
        meter = RunMeter()
        try:
            _, entry, hit = await self._gateway.chat(self._endpoint, messages, request, 0, meter)
        except EndpointError as exc:
            self._budget.settle(estimate, 0)
            raise PromptLooperError(
                f"evolve: the proposer's call for generation {generation} failed: {exc}"
            ) from None
        self._budget.settle(estimate, meter.paid)
        call = store.GenerationCall(
            generation=generation,
            model=str(request["model"]),
            tokens_in=meter.tokens_in,
            tokens_out=meter.tokens_out,
            paid_in=meter.paid_in,
            paid_out=meter.paid_out,
            cost=meter.paid_cost,
            cached=hit,
        )
        return str(entry.value["text"]), call

    def _judge(self, brief: Brief, raw: Sequence[Any]) -> list[store.Proposal]:
        """Each raw proposal checked, the accepted ones named g<generation>.<n>."""
        known = dict(brief.known)
        item = self._spec.items[brief.trained[0]] if brief.trained else self._spec.items[0]
        leader_prompt = brief.best[0].name if brief.best else ""
        proposals = []
        for position, entry in enumerate(raw):
            template, parents, rationale = _fields(entry, known, leader_prompt)
            problem = (
                "the proposal is not an object with a text `template`"
                if template is None
                else self._check.problem(template, known, brief.leader_config, item)
            )
            name = None
            if problem is None:
                name = _free_name(brief.generation, known)
                known[name] = template or ""
            proposals.append(
                store.Proposal(
                    generation=brief.generation,
                    position=position,
                    template=template or json.dumps(entry)[: 2 * RATIONALE_CHARS],
                    parents=parents,
                    rationale=rationale,
                    name=name,
                    reason=problem,
                )
            )
        return proposals


def _fields(
    entry: Any, known: Mapping[str, str], fallback: str
) -> tuple[str | None, tuple[str, ...], str]:
    """(template, parents among `known`, rationale) of one raw proposal."""
    if not isinstance(entry, dict) or not isinstance(entry.get("template"), str):
        return None, (), ""
    named = entry.get("parents", entry.get("parent"))
    candidates = named if isinstance(named, list) else [named]
    parents = tuple(p for p in candidates if isinstance(p, str) and p in known)
    rationale = entry.get("rationale")
    text = rationale.strip()[:RATIONALE_CHARS] if isinstance(rationale, str) else ""
    return entry["template"], parents or ((fallback,) if fallback else ()), text


def _free_name(generation: int, known: Mapping[str, str]) -> str:
    number = 1
    while f"g{generation}.{number}" in known:
        number += 1
    return f"g{generation}.{number}"


def _with_error(call: store.GenerationCall, error: str) -> store.GenerationCall:
    return store.GenerationCall(**{**call.__dict__, "error": error})
