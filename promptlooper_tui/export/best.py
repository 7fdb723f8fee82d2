"""The best config as one plain document: the data of the json, yaml and env exports."""

from __future__ import annotations

from typing import Any

from ..domain.errors import BadInput
from ..domain.experiment import ExperimentSpec
from .source import ExportJob, utc_now


async def best_config(job: ExportJob) -> dict[str, Any]:
    """The leader, ready to deploy: its swept `config`, every parameter it runs with
    (`params`), the winning prompt's text (`prompt`, when the experiment sweeps prompts), the
    pipeline, its score with 95% CI, and what was ranked (`ranked`: the experiment version,
    its sweeps and runs; `sweep_id` is the sweep asked for, else the version's latest). Only
    JSON types, so JSON and YAML carry it alike.

    Raises BadInput when nothing ranked has a score yet.
    """
    sweep = job.sweep
    board = await job.ranking(top=1)
    if not board.entries:
        raise BadInput(
            f"{sweep.experiment!r} ({board.ranked.describe()}) has no scored runs yet"
            + ("" if job.asked_sweep else "; an older version's sweep may: use --sweep ID")
        )
    leader = board.entries[0]
    params = winner_params(job.spec, leader.config)
    data: dict[str, Any] = {
        "experiment": sweep.experiment,
        "experiment_version": board.ranked.version,
        "sweep_id": sweep.id,
        "exported_at": utc_now(),
        "config": leader.config,
        "params": params,
    }
    prompt = winning_prompt(job.spec, params)
    if prompt is not None:
        data["prompt"] = prompt
    data["pipeline"] = [stage.model_dump(exclude_none=True) for stage in job.spec.pipeline]
    data |= {
        "score": leader.score,
        "ci_low": leader.ci_low,
        "ci_high": leader.ci_high,
        "n": leader.n,
        "ranked": board.ranked.model_dump(mode="json"),
    }
    return data


def winner_params(spec: ExperimentSpec, config: dict[str, Any]) -> dict[str, Any]:
    """Fixed parameters overlaid with the swept `config`, in the experiment file's order."""
    merged = spec.fixed_parameters() | config
    return {name: merged[name] for name in spec.parameters if name in merged}


def winning_prompt(spec: ExperimentSpec, params: dict[str, Any]) -> str | None:
    """The template text of the prompt named by the `prompt` parameter, if there is one."""
    name = params.get("prompt")
    if not spec.prompts or not isinstance(name, str):
        return None
    return spec.prompts.get(name)
