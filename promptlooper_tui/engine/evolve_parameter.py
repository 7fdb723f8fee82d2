"""What evolve rewrites: the prompts one parameter picks among (`prompt: [plain, keyworded]`,
the names being keys of the experiment's `prompts:`). No template machinery here: commands that
only read the store use it."""

from __future__ import annotations

from ..domain.errors import BadInput
from ..domain.experiment import CategoricalParameter, ExperimentSpec, parse_parameter


def prompt_parameter(spec: ExperimentSpec) -> str:
    """The one parameter whose values are all names of `prompts:` (evolve rewrites its
    prompts); BadInput naming what is missing otherwise."""
    if not spec.prompts:
        raise BadInput("strategy evolve needs `prompts:` (the templates it rewrites)")
    names = []
    for name, raw in spec.parameters.items():
        parsed = parse_parameter(raw)
        values = parsed.values if isinstance(parsed, CategoricalParameter) else [parsed]
        if values and all(isinstance(v, str) and v in spec.prompts for v in values):
            names.append(name)
    if len(names) != 1:
        found = "none" if not names else ", ".join(names)
        raise BadInput(
            "strategy evolve needs exactly one parameter that picks among `prompts:` (e.g. "
            f"`prompt: [{', '.join(list(spec.prompts)[:2])}]`); found {found}"
        )
    return names[0]


def starting_prompts(spec: ExperimentSpec, parameter: str) -> list[str]:
    """The prompt names the parameter starts with, in the file's order."""
    parsed = parse_parameter(spec.parameters[parameter])
    values = parsed.values if isinstance(parsed, CategoricalParameter) else [parsed]
    return list(dict.fromkeys(values))
