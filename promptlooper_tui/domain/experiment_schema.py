"""The experiment file format as a JSON Schema, every field described (DESIGN.md section 4).

Built from `ExperimentSpec.model_json_schema()`, so it follows the model; the words live here,
beside one another, where they read as the format's documentation. `experiment_json_schema()`
fails loudly when a field of the model has no description here (tests build it), so a new
field cannot reach agents undocumented.
"""

from __future__ import annotations

from typing import Any

from .experiment import ExperimentSpec

_ENDPOINT = (
    "a stored endpoint's name (`simulated` is the built-in simulated endpoint, no setup), or "
    "inline {base_url, api_key_env}"
)
_SCORER_COMMON = {
    "name": "display name (default: the type, e.g. keyword or format:json)",
    "weight": "weight of this scorer in the run's weighted mean score (default 1)",
}

#: Descriptions by schema definition, then by property ("" is the definition itself).
DESCRIPTIONS: dict[str, dict[str, str]] = {
    "ExperimentSpec": {
        "": "A PromptLooper experiment: prompt variants x models x parameters, run over a "
        "small dataset and scored. Written as YAML; re-importing the same name with changes "
        "makes a new version.",
        "name": "unique name (letters, digits, '-', '_', '.'); the same name makes a new version",
        "description": "what the experiment tries to find out",
        "endpoint": "the OpenAI-compatible endpoint the pipeline calls: " + _ENDPOINT,
        "parameters": "the sweep space. Each key is a parameter: a list is categorical "
        "([a, b]), {min, max, steps} a numeric range (random/guided sample it, grid takes "
        "`steps` even points), a scalar is fixed. OpenAI parameters (model, temperature, "
        "top_p, max_tokens, seed, presence_penalty, frequency_penalty, stop, response_format) "
        "are sent; `prompt` usually names one of `prompts`; others are for templates only.",
        "prompts": "named prompt texts (Jinja2 templates), used as {{ prompts[params.prompt] }}",
        "pipeline": "one or more stages, run in order for every run; a later stage may use "
        "{{ stages.NAME.output }}",
        "dataset": "the items: an inline list of rows ({input: {...}, reference: ..., other "
        "fields}), or {file: items.jsonl | items.csv}",
        "scorers": "how each output is scored, each in [0, 1]; a run's score is their "
        "weighted mean",
        "sweep": "how the sweep runs: strategy, sizes, concurrency, token budget",
    },
    "StageSpec": {
        "": "One pipeline stage: a chat request built from templates.",
        "name": "identifier of the stage (letters, digits, _), usable as stages.NAME.output",
        "system": "system message template (optional)",
        "user": "user message template. Context: params, item (the dataset row), prompts, "
        "stages.NAME.output; an undefined variable is an error",
        "params": "parameters this stage overrides, e.g. {temperature: 0.0}",
    },
    "InlineEndpoint": {
        "": "An endpoint given in the file itself.",
        "base_url": "the OpenAI-compatible API's base URL, e.g. http://127.0.0.1:8080/v1",
        "api_key_env": "name of the environment variable holding the API key (not allowed "
        "in experiments sent over MCP or the HTTP API: use a stored endpoint)",
    },
    "DatasetFile": {
        "": "A dataset read from a file.",
        "file": "a .jsonl (one JSON object per line) or .csv file; relative paths resolve "
        "against the experiment file's folder (over MCP and the API: inside the data folder)",
    },
    "KeywordScorerSpec": {
        "": "Scores the share of keyword checks the output passes.",
        **_SCORER_COMMON,
        "type": "keyword",
        "required_present": "words that must appear in the output",
        "required_present_from": "a dataset field holding the words that must appear, "
        "e.g. keywords",
        "required_absent": "words that must not appear, e.g. ['As an AI']",
        "case_sensitive": "match case exactly (default false)",
    },
    "FormatScorerSpec": {
        "": "Scores the output's form: json, markdown, length, or structure (a JSON Schema).",
        **_SCORER_COMMON,
        "type": "format",
        "format": "json (parses), markdown, length (min/max tokens), structure (matches `schema`)",
        "min_tokens": "for length: fewest tokens allowed",
        "max_tokens": "for length: most tokens allowed",
        "schema": "for structure: the JSON Schema the output must match",
    },
    "EmbeddingScorerSpec": {
        "": "Scores cosine similarity between the output and the item's reference.",
        **_SCORER_COMMON,
        "type": "embedding",
        "endpoint": "where the embedding model runs (default: the experiment's endpoint): "
        + _ENDPOINT,
        "model": "the embedding model",
        "reference_field": "the dataset field compared with (default reference)",
    },
    "LlmJudgeScorerSpec": {
        "": "Asks a judge model to rate the output; the rating it answers is scaled to [0, 1].",
        **_SCORER_COMMON,
        "type": "llm_judge",
        "endpoint": "where the judge model runs (default: the experiment's endpoint): " + _ENDPOINT,
        "model": "the judge model",
        "prompt": "the judge's prompt template; {{ output }} is the output to rate, item and "
        "params are available too",
        "params": "request parameters for the judge, e.g. {temperature: 0}",
    },
    "HumanScorerSpec": {
        "": "A person's rating, given later (promptlooper score, the app, score_run).",
        **_SCORER_COMMON,
        "type": "human",
    },
    "SweepSettings": {
        "": "How the sweep runs.",
        "strategy": "grid (every config), random (`samples` configs), guided (random, then "
        "neighbours of the best, raced), racing (drop configs clearly worse than the leader), "
        "evolve (race the prompts, then a proposer model writes better ones, generation after "
        "generation; the winner is judged on held-out items)",
        "samples": "configs to try, for random and guided (and racing's candidates)",
        "repeats": "runs per config per item (default 1)",
        "seed": "random seed of the sampling strategies",
        "max_concurrency": "most LLM calls in flight at once (default 8)",
        "max_tokens": "token budget of the whole sweep; it stops dispatching when reached "
        "(not the per-call max_tokens, which is a parameter)",
        "stream": "stream answers (server-sent events) instead of waiting for whole ones",
        "top_k": "guided: how many of the best configs it proposes neighbours of; evolve: how "
        "many of the best prompts the proposer sees and how many finalists run the held-out "
        "items",
        "explore": "guided: share of configs still drawn at random (0-1)",
        "items_per_round": "racing, guided, evolve: items added per round",
        "alpha": "racing, guided, evolve: significance level for dropping a config",
        "min_effect": "racing and guided: score difference too small to matter (equivalent "
        "configs stop)",
        "max_runs": "racing, guided and evolve: the most runs the sweep makes; it ends there "
        "and the best survivor wins (evolve shares it among its generations, keeping the "
        "held-out runs aside; unset, evolve's is twice a grid of the experiment's own configs "
        "over every item)",
        "rate_limit_wait_s": "seconds one call may wait on HTTP 429 answers before its run "
        "fails (default: the endpoint's setting, else 600)",
        "generations": "evolve: rounds of proposals after the experiment's own prompts (default 3)",
        "proposals": "evolve: new prompt templates the proposer writes per generation (default 4)",
        "proposer": "evolve (required): the model that writes the new prompt templates",
        "holdout": "evolve: share of the items held out (default 0.3); the proposer never "
        "sees them and the winner is judged on them",
    },
    "ProposerSpec": {
        "": "evolve's proposer: one call per generation writes the next prompt templates.",
        "endpoint": "a stored endpoint's name or an inline {base_url, api_key_env}; default "
        "the experiment's endpoint",
        "model": "the model that writes the templates",
        "params": "request parameters of its call (temperature 0.7 and max_tokens 2000 "
        "unless given)",
    },
}


def experiment_json_schema() -> dict[str, Any]:
    """The JSON Schema of an experiment file, with a description on every definition and
    field. Raises KeyError naming a field that has none here."""
    schema = ExperimentSpec.model_json_schema()
    _describe("ExperimentSpec", schema)
    for name, definition in schema.get("$defs", {}).items():
        _describe(name, definition)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "PromptLooper experiment"
    return schema


def _describe(name: str, definition: dict[str, Any]) -> None:
    words = DESCRIPTIONS.get(name)
    if words is None:
        raise KeyError(f"the experiment schema's {name} has no descriptions")
    definition["description"] = words[""]
    for field, prop in definition.get("properties", {}).items():
        if field not in words:
            raise KeyError(f"the experiment schema's {name}.{field} has no description")
        prop["description"] = words[field]
