"""Templates tried before any token is spent: compiled for syntax, then rendered against the
dataset with representative parameters, so that a Jinja syntax error, an unknown variable or a
template too expensive to render is reported at the template (and line) that has it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from jinja2 import Template, TemplateSyntaxError, UndefinedError
from jinja2.exceptions import SecurityError

from ..domain.errors import TemplateLimitExceeded
from ..domain.experiment import CategoricalParameter, ExperimentSpec
from .experiment_yaml import Path_
from .templates import PipelineTemplates, compile_template

#: A problem found: where in the document, what, and on which line of that template (if known).
TemplateIssue = tuple[Path_, str, int | None]

_TOO_EXPENSIVE = "experiment too expensive to check"

#: Trial renders stop after this many dataset items: enough to catch a missing field.
_TRIAL_ITEMS = 200

_NO_ATTRIBUTE = re.compile(r"^'.+' has no attribute '(?P<name>.+)'$")
_UNDEFINED = re.compile(r"^'(?P<name>.+)' is undefined$")
_UNCLOSED = re.compile(r"The innermost block that needs to be closed is '(?P<tag>\w+)'")


def syntax_issue(path: Path_, text: str) -> TemplateIssue | None:
    """The syntax error of template `text` (found at `path`), if it has one."""
    try:
        compile_template(text)
    except TemplateSyntaxError as exc:
        return path, _syntax_message(exc), exc.lineno
    return None


def judge_prompt_issue(path: Path_, prompt: str, spec: ExperimentSpec) -> TemplateIssue | None:
    """The first problem of a judge's `prompt` (found at `path`) rendered for the dataset."""
    try:
        template = compile_template(prompt)
        params = next(_representative_params(spec))
        for item in spec.items[:_TRIAL_ITEMS]:
            template.render(
                output="(output)",
                item=item,
                reference=item.get("reference"),
                input=item.get("input"),
                params=params,
            )
    except TemplateSyntaxError as exc:
        return path, _syntax_message(exc), exc.lineno
    except TemplateLimitExceeded as exc:
        return path, f"{_TOO_EXPENSIVE}: {exc}", None
    except (UndefinedError, SecurityError, TypeError) as exc:
        _, line = _failure_site(exc, {path: template})
        return path, _render_message(exc), line
    return None


def pipeline_issue(spec: ExperimentSpec) -> TemplateIssue | None:
    """The first problem of the pipeline's templates rendered for the dataset, once per prompt
    choice, each stage seeing placeholder outputs of the stages before it."""
    templates = PipelineTemplates(spec)
    sites: dict[Path_, Template] = {("prompts", n): t for n, t in templates.prompts.items()}
    for index, (_, system, user) in enumerate(templates.stages):
        sites[("pipeline", index, "user")] = user
        if system is not None:
            sites[("pipeline", index, "system")] = system
    for params in _representative_params(spec):
        outputs: dict[str, str] = {}
        for index, stage in enumerate(spec.pipeline):
            stage_params = {**params, **stage.params}
            for item_index, item in enumerate(spec.items[:_TRIAL_ITEMS]):
                try:
                    templates.render_stage(index, stage_params, item, outputs)
                except TemplateLimitExceeded as exc:
                    return ("pipeline", index), f"{_TOO_EXPENSIVE}: {exc}", None
                except (UndefinedError, SecurityError, KeyError, TypeError) as exc:
                    path, line = _failure_site(exc, sites)
                    where = f"dataset item {item_index}"
                    if "prompt" in params and len(spec.prompts) > 1:
                        where += f", prompt {params['prompt']!r}"
                    return (
                        path or ("pipeline", index, "user"),
                        f"{_render_message(exc)} ({where})",
                        line,
                    )
            outputs[stage.name] = f"(output of stage {stage.name})"
    return None


def _representative_params(spec: ExperimentSpec) -> Iterator[dict[str, Any]]:
    """One params dict per prompt choice (others at their first value): enough to render all."""
    space = spec.parameter_space()
    base = dict(spec.fixed_parameters())
    for name, parameter in space.items():
        if isinstance(parameter, CategoricalParameter):
            base[name] = parameter.values[0]
        else:
            base[name] = parameter.grid_values()[0]
    prompt = space.get("prompt")
    if isinstance(prompt, CategoricalParameter):
        for value in prompt.values:
            yield {**base, "prompt": value}
    else:
        yield base


def _failure_site(
    exc: BaseException, sites: dict[Path_, Template]
) -> tuple[Path_ | None, int | None]:
    """Which template raised `exc`, and on which of its lines: the innermost frame of a
    compiled template in the traceback (a prompt rendered inside a stage is its own site)."""
    by_name = {t.filename: path for path, t in sites.items()}
    found: tuple[Path_ | None, int | None] = (None, None)
    trace = exc.__traceback__
    while trace is not None:
        path = by_name.get(trace.tb_frame.f_code.co_filename)
        if path is not None:
            found = (path, trace.tb_lineno)
        trace = trace.tb_next
    return found


def _render_message(exc: BaseException) -> str:
    """A template failure in PromptLooper's words rather than Jinja's."""
    text = str(exc).strip("'\"") if isinstance(exc, KeyError) else str(exc)
    if isinstance(exc, UndefinedError):
        if match := _NO_ATTRIBUTE.match(text):
            return f"template error: no field {match['name']!r} here"
        if match := _UNDEFINED.match(text):
            return (
                f"template error: unknown name {match['name']!r} (templates see params, item, "
                "prompts and stages)"
            )
    return f"template error: {text}"


def _syntax_message(exc: TemplateSyntaxError) -> str:
    if match := _UNCLOSED.search(exc.message or ""):
        tag = match["tag"]
        return f"template syntax error: the {{% {tag} %}} block is never closed ({{% end{tag} %}})"
    return f"template syntax error: {exc.message}"
