"""Pipeline templates: Jinja2, sandboxed, with undefined variables as errors.

Context of every template: `params` (the run's parameters), `item` (the dataset row),
`prompts` (the experiment's prompts, rendered lazily with the same context) and
`stages.<name>.output` (outputs of the stages already run).

Every render is bounded by `TemplateLimits` (engine/sandbox.py): past a limit it raises
domain.errors.TemplateLimitExceeded.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from jinja2 import Template

from ..domain.experiment import ExperimentSpec
from .sandbox import SANDBOX
from .template_budget import DEFAULT_LIMITS, TemplateLimits


def compile_template(source: str, limits: TemplateLimits = DEFAULT_LIMITS) -> Template:
    """Compile one template; raises jinja2.TemplateSyntaxError with the template line.

    Its `render` raises TemplateLimitExceeded when it would do more work than `limits` allow.
    """
    return SANDBOX.compile_bounded(source, limits)


@dataclass(frozen=True)
class StageOutput:
    output: str


class _LazyPrompts(Mapping[str, str]):
    """`prompts[name]` renders that prompt on first use, with the caller's context."""

    def __init__(self, templates: Mapping[str, Template], context: dict[str, Any]) -> None:
        self._templates = templates
        self._context = context
        self._rendered: dict[str, str] = {}

    def __getitem__(self, name: str) -> str:
        if name not in self._rendered:
            try:
                template = self._templates[name]
            except KeyError:
                raise KeyError(f"no prompt named {name!r}") from None
            self._rendered[name] = template.render(self._context)
        return self._rendered[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._templates)

    def __len__(self) -> int:
        return len(self._templates)


class PipelineTemplates:
    """Every template of an experiment, compiled once; renders a stage's chat messages."""

    def __init__(self, spec: ExperimentSpec, limits: TemplateLimits = DEFAULT_LIMITS) -> None:
        self.prompts = {name: compile_template(text, limits) for name, text in spec.prompts.items()}
        self.stages = [
            (
                stage.name,
                compile_template(stage.system, limits) if stage.system is not None else None,
                compile_template(stage.user, limits),
            )
            for stage in spec.pipeline
        ]

    def context(
        self, params: Mapping[str, Any], item: Mapping[str, Any], outputs: Mapping[str, str]
    ) -> dict[str, Any]:
        context: dict[str, Any] = {
            "params": params,
            "item": item,
            "stages": {name: StageOutput(text) for name, text in outputs.items()},
        }
        context["prompts"] = _LazyPrompts(self.prompts, context)
        return context

    def render_stage(
        self,
        index: int,
        params: Mapping[str, Any],
        item: Mapping[str, Any],
        outputs: Mapping[str, str],
    ) -> list[dict[str, str]]:
        """The messages of stage `index` for one run, given the outputs of earlier stages."""
        _, system, user = self.stages[index]
        context = self.context(params, item, outputs)
        messages = []
        if system is not None:
            messages.append({"role": "system", "content": system.render(context)})
        messages.append({"role": "user", "content": user.render(context)})
        return messages
