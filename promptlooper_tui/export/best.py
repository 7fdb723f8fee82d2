"""The best config of a sweep as one plain document: the data of the json, yaml and env exports."""

from __future__ import annotations

from typing import Any

from ..domain.errors import BadInput
from ..domain.experiment import ExperimentSpec
from .source import ExportJob, utc_now


async def best_config(job: ExportJob) -> dict[str, Any]:
    """The leader of the sweep, ready to deploy: its swept `config`, every parameter it runs
    with (`params`), the winning prompt's text (`prompt`, when the experiment sweeps prompts),
    the pipeline, and its score with 95% CI. Only JSON types, so JSON and YAML carry it alike.

    Raises BadInput when no run of the sweep has a score yet.
    """
    sweep = job.sweep
    entries = await job.wb.leaderboard(sweep.id, top=1, sweep=sweep.id)
    if not entries:
        raise BadInput(f"sweep {sweep.id} of {sweep.experiment!r} has no scored runs yet")
    leader = entries[0]
    params = winner_params(job.spec, leader.config)
    data: dict[str, Any] = {
        "experiment": sweep.experiment,
        "experiment_version": sweep.experiment_version,
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
