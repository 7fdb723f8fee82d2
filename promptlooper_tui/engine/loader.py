"""Load and validate experiment files: every problem at once, with file, field path and line.

Validation runs in three passes over one parse of the YAML: the document's shape (pydantic,
unknown keys are errors), the experiment's meaning (parameter ranges, prompt names, scorer
fields, JSON Schemas), and a trial render of every template against the dataset, so a Jinja
syntax error or an unknown variable is caught before any token is spent.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pydantic
from jinja2 import Template, TemplateSyntaxError, UndefinedError
from jinja2.exceptions import SecurityError

from ..domain.errors import Issue, TemplateLimitExceeded, ValidationError
from ..domain.experiment import (
    API_PARAMETERS,
    CategoricalParameter,
    DatasetFile,
    EmbeddingScorerSpec,
    ExperimentSpec,
    FormatScorerSpec,
    InlineEndpoint,
    KeywordScorerSpec,
    LlmJudgeScorerSpec,
    RangeParameter,
    StageSpec,
    SweepSettings,
    parse_parameter,
)
from ..domain.trust import CallerPolicy
from .datasets import DatasetReadError, read_dataset
from .experiment_yaml import (
    ParsedExperiment,
    Path_,
    check_values,
    format_path,
    line_of,
    parse_experiment_yaml,
)
from .limits import Limits, TooExpensive, check_sweep_size, default_limits
from .templates import PipelineTemplates, compile_template

_TOO_EXPENSIVE = "experiment too expensive to check"

#: Trial renders stop after this many dataset items: enough to catch a missing field.
_TRIAL_ITEMS = 200


@dataclass(frozen=True)
class LoadedExperiment:
    """A valid experiment: the spec (dataset inlined) and the text it came from."""

    spec: ExperimentSpec
    text: str
    source: str
    #: The absolute path of the file it was read from, if any: its folder is where relative
    #: dataset files resolve, in the CLI and in the editor alike.
    origin: str | None = None


def load_experiment_file(path: str | Path, limits: Limits | None = None) -> LoadedExperiment:
    """Read and validate one experiment file (the person at the terminal's); raises
    ValidationError naming every problem. Relative dataset files resolve against its folder."""
    file = Path(path)
    limits = limits or default_limits()
    try:
        with file.open("rb") as handle:
            raw = handle.read(limits.experiment_bytes + 1)
        text = raw.decode("utf-8")
    except FileNotFoundError:
        raise ValidationError([Issue("file not found", source=str(path))]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ValidationError([Issue(f"cannot read file: {exc}", source=str(path))]) from None
    loaded = load_experiment_text(
        text, source=str(path), base_dir=file.resolve().parent, limits=limits
    )
    return dataclasses.replace(loaded, origin=str(file.resolve()))


def load_experiment_text(
    text: str,
    *,
    source: str = "<experiment>",
    base_dir: Path | None = None,
    policy: CallerPolicy | None = None,
    limits: Limits | None = None,
) -> LoadedExperiment:
    """Validate experiment YAML text. Relative dataset files resolve against `base_dir`; for a
    remote caller (`policy.remote`), only inside its data folder.

    Raises ValidationError naming every problem, or its kind TooExpensive when the text asks
    for more work than `limits` allow.
    """
    policy = policy or CallerPolicy.local()
    limits = limits or default_limits()
    parsed = parse_experiment_yaml(text, source, limits)
    data, issues = parsed.data, parsed.issues
    checker = _Checker(parsed, source, base_dir or Path.cwd(), policy, limits)
    issues += checker.run(values_ok=not issues)
    if issues:
        raise ValidationError(sorted(issues, key=lambda issue: issue.line or 0))
    spec = ExperimentSpec.model_validate(data)
    return LoadedExperiment(spec=spec, text=text, source=source)


class _Checker:
    def __init__(
        self,
        parsed: ParsedExperiment,
        source: str,
        base_dir: Path,
        policy: CallerPolicy,
        limits: Limits,
    ) -> None:
        self.data = parsed.data
        self.lines = parsed.lines
        self.text_starts = parsed.text_starts
        self.source = source
        self.base_dir = base_dir
        self.policy = policy
        self.limits = limits
        self.issues: list[Issue] = []

    def add(self, path: Path_, message: str, template_line: int | None = None) -> None:
        """Report `message` at `path`; with `template_line`, on that line of the path's text."""
        line = line_of(self.lines, path)
        start = self.text_starts.get(path)
        if template_line is not None and start is not None:
            line = start + template_line - 1
        self.issues.append(Issue(message, format_path(path), line, self.source))

    def run(self, *, values_ok: bool) -> list[Issue]:
        """Every problem; the passes that need a valid spec run only when the values are."""
        self._check_shape()
        self._check_raw_parts()
        self._check_endpoints()
        self._resolve_dataset()
        if values_ok and not self.issues:
            spec = ExperimentSpec.model_validate(self.data)
            self._check_meaning(spec)
            if not self.issues:
                self._check_size(spec)
            if not self.issues:
                self._check_templates(spec)
        return self.issues

    # -- pass 1: shape -------------------------------------------------------------------------

    def _check_shape(self) -> None:
        try:
            ExperimentSpec.model_validate(self.data)
        except pydantic.ValidationError as exc:
            seen: set[tuple[str, str]] = set()
            #: Errors of union branches that do not fit the value, by the value's path.
            unfitting: dict[Path_, list[Any]] = {}
            for error in exc.errors():
                reported = self._explain(error)
                if reported is None:
                    unfitting.setdefault(self._data_path(tuple(error["loc"]))[0], []).append(error)
                    continue
                path, message = reported
                if (format_path(path), message) not in seen:
                    seen.add((format_path(path), message))
                    self.add(path, message)
            # A value that fits no branch at all (a list where text or a mapping is expected)
            # would otherwise go unreported: say what each branch expected.
            reported = {path for path, _ in seen}
            for path, errors in unfitting.items():
                if not any(_within(format_path(path), other) for other in reported):
                    expected = " or ".join(
                        dict.fromkeys(
                            str(e["msg"]).removeprefix("Input should be ") for e in errors
                        )
                    )
                    self.add(path, f"expected {expected} (got {_short(errors[0].get('input'))})")
                    reported.add(format_path(path))

    def _explain(self, error: Any) -> tuple[Path_, str] | None:
        path, plausible = self._data_path(tuple(error["loc"]))
        if not plausible:
            return None
        kind = error["type"]
        if kind == "extra_forbidden":
            key = str(path[-1])
            return path, f"unknown key {key!r}" + _suggest(key, self._known_keys(path[:-1]))
        if kind == "missing":
            return path, f"required key {str(path[-1])!r} is missing"
        if kind == "union_tag_invalid":
            return (*path, "type"), f"unknown scorer type; expected one of {_SCORER_TYPES}"
        if kind == "union_tag_not_found":
            return path, f"scorer needs a `type:`; one of {_SCORER_TYPES}"
        if kind == "too_short" and isinstance(error.get("input"), list):
            return path, "an empty list; give at least one"
        message = str(error["msg"]).removeprefix("Value error, ")
        return path, f"{message} (got {_short(error.get('input'))})"

    def _data_path(self, loc: Path_) -> tuple[Path_, bool]:
        """Strip pydantic's union-branch tags from `loc`; say if the branch fits the data."""
        path: list[str | int] = []
        node: Any = self.data
        for position, part in enumerate(loc):
            last = position == len(loc) - 1
            if _has_child(node, part):
                path.append(part)
                node = node[part]
            elif (
                isinstance(part, str)
                and _is_branch_tag(part)
                and not (last and part in _MODEL_KEYS)
            ):
                if not _branch_fits(part, node):
                    return tuple(path), False
            else:
                path.append(part)
        return tuple(path), True

    def _known_keys(self, parent: Path_) -> list[str]:
        model = _model_at(parent, self.data)
        return list(model.model_fields) if model else []

    # -- pass 2: meaning -----------------------------------------------------------------------

    def _resolve_dataset(self) -> None:
        """Read a dataset file into the document; report a file that cannot be read or a
        dataset without items, whatever else is wrong (a wrong shape is pass 1's to report)."""
        dataset = self.data.get("dataset")
        if isinstance(dataset, dict) and isinstance(dataset.get("file"), str):
            try:
                dataset = read_dataset(
                    dataset["file"],
                    base_dir=self.base_dir,
                    confine_to=self.policy.data_dir if self.policy.remote else None,
                    limits=self.limits,
                )
            except DatasetReadError as exc:
                self.add(("dataset", "file"), str(exc))
                return
            for path, message in check_values(dataset, ("dataset",), self.limits)[:10]:
                self.add(("dataset", "file"), f"{format_path(path)}: {message}")
            self.data["dataset"] = dataset
        if isinstance(dataset, list) and not dataset:
            self.add(("dataset",), "the dataset is empty; add at least one item")
        elif isinstance(dataset, list) and len(dataset) > self.limits.dataset_rows:
            self.add(
                ("dataset",),
                f"the dataset has {len(dataset):,} rows; the limit is "
                f"{self.limits.dataset_rows:,} (PROMPTLOOPER_LIMIT_DATASET_ROWS)",
            )

    def _check_endpoints(self) -> None:
        """A remote caller may not send a key from this host's environment to a URL of its
        choosing: an inline endpoint naming `api_key_env` is refused (DESIGN §9)."""
        if not self.policy.remote:
            return
        scorers = self.data.get("scorers")
        places: list[tuple[Path_, Any]] = [(("endpoint",), self.data.get("endpoint"))]
        for index, scorer in enumerate(scorers if isinstance(scorers, list) else []):
            if isinstance(scorer, dict):
                places.append((("scorers", index, "endpoint"), scorer.get("endpoint")))
        for path, endpoint in places:
            if isinstance(endpoint, dict) and endpoint.get("api_key_env") is not None:
                self.add(
                    (*path, "api_key_env"),
                    "an inline endpoint sent over the API or MCP may not name an API-key "
                    "variable; use a stored endpoint's name (promptlooper endpoints add)",
                )

    def _check_size(self, spec: ExperimentSpec) -> None:
        try:
            check_sweep_size(spec, spec.sweep, self.limits)
        except TooExpensive as exc:
            where: Path_ = ("sweep",) if spec.sweep.samples is None else ("sweep", "samples")
            self.add(where, exc.issues[0].message)

    def _check_raw_parts(self) -> None:
        """Checks that need only parts of the document, so they run even when its shape is off."""
        parameters = self.data.get("parameters")
        prompts = self.data.get("prompts")
        prompt_names = list(prompts) if isinstance(prompts, dict) else []
        if isinstance(parameters, dict):
            for name, raw in parameters.items():
                self._check_parameter(str(name), raw, prompt_names)
        if isinstance(prompts, dict):
            for name, text in prompts.items():
                if isinstance(text, str):
                    self._compiles(("prompts", name), text)
        pipeline = self.data.get("pipeline")
        for index, stage in enumerate(pipeline if isinstance(pipeline, list) else []):
            for field in ("system", "user"):
                text = stage.get(field) if isinstance(stage, dict) else None
                if isinstance(text, str):
                    self._compiles(("pipeline", index, field), text)

    def _check_meaning(self, spec: ExperimentSpec) -> None:
        stage_models = [stage.params.get("model") for stage in spec.pipeline]
        if "model" not in spec.parameters and not all(stage_models):
            self.add(("parameters",), "no `model` parameter: say which model(s) to call")
        for index, stage in enumerate(spec.pipeline):
            unknown = sorted(set(stage.params) - API_PARAMETERS)
            for key in unknown:
                self.add(
                    ("pipeline", index, "params", key),
                    "stage params may only override API parameters "
                    f"({', '.join(sorted(API_PARAMETERS))})",
                )
        names = [stage.name for stage in spec.pipeline]
        for index, name in enumerate(names):
            if name in names[:index]:
                self.add(("pipeline", index, "name"), f"duplicate stage name {name!r}")
        for index, scorer in enumerate(spec.scorers):
            self._check_scorer(index, scorer, spec)
        sweep = spec.sweep
        if sweep.strategy in ("random", "guided") and sweep.samples is None:
            self.add(("sweep", "samples"), f"strategy {sweep.strategy!r} needs `samples:`")

    def _check_parameter(self, name: str, raw: Any, prompt_names: list[str]) -> None:
        path: Path_ = ("parameters", name)
        try:
            parsed = parse_parameter(raw)
        except pydantic.ValidationError as exc:
            for error in exc.errors():
                # A list's own errors belong to the list, not to the model's `values` field.
                loc = tuple(error["loc"])[1:] if isinstance(raw, list) else tuple(error["loc"])
                if error["type"] == "too_short":
                    self.add(path, "an empty list; give at least one value")
                else:
                    self.add((*path, *loc), str(error["msg"]).removeprefix("Value error, "))
            return
        if name == "prompt":
            choices = parsed.values if isinstance(parsed, CategoricalParameter) else [parsed]
            for position, choice in enumerate(choices):
                if choice not in prompt_names:
                    where = (*path, position) if isinstance(parsed, CategoricalParameter) else path
                    known = ", ".join(map(str, prompt_names)) or "none defined"
                    self.add(where, f"unknown prompt {choice!r} (prompts: {known})")
        if isinstance(parsed, RangeParameter) and name in ("model", "prompt", "stop"):
            self.add(path, f"{name} cannot be a numeric range; give a list")

    def _check_scorer(self, index: int, scorer: Any, spec: ExperimentSpec) -> None:
        path: Path_ = ("scorers", index)
        items = spec.items
        if isinstance(scorer, KeywordScorerSpec) and scorer.required_present_from:
            field = scorer.required_present_from
            missing = [i for i, item in enumerate(items) if field not in item]
            if missing:
                self.add(
                    (*path, "required_present_from"),
                    f"dataset items {_few(missing)} have no field {field!r}",
                )
        if isinstance(scorer, FormatScorerSpec) and scorer.schema_ is not None:
            import jsonschema

            try:
                jsonschema.validators.validator_for(scorer.schema_).check_schema(scorer.schema_)
            except jsonschema.SchemaError as exc:
                self.add((*path, "schema"), f"not a valid JSON Schema: {exc.message}")
        if isinstance(scorer, EmbeddingScorerSpec):
            missing = [i for i, item in enumerate(items) if scorer.reference_field not in item]
            if missing:
                self.add(
                    (*path, "reference_field"),
                    f"dataset items {_few(missing)} have no field {scorer.reference_field!r}",
                )
        if isinstance(scorer, LlmJudgeScorerSpec):
            try:
                template = compile_template(scorer.prompt)
                params = next(_representative_params(spec, spec.fixed_parameters()))
                for item in items[:_TRIAL_ITEMS]:
                    template.render(
                        output="(output)",
                        item=item,
                        reference=item.get("reference"),
                        input=item.get("input"),
                        params=params,
                    )
            except TemplateSyntaxError as exc:
                self.add((*path, "prompt"), _syntax_message(exc), exc.lineno)
            except TemplateLimitExceeded as exc:
                self.add((*path, "prompt"), f"{_TOO_EXPENSIVE}: {exc}")
            except (UndefinedError, SecurityError, TypeError) as exc:
                _, line = _failure_site(exc, {(*path, "prompt"): template})
                self.add((*path, "prompt"), _render_message(exc), line)

    # -- pass 3: templates ---------------------------------------------------------------------

    def _check_templates(self, spec: ExperimentSpec) -> None:
        templates = PipelineTemplates(spec)
        sites: dict[Path_, Template] = {("prompts", n): t for n, t in templates.prompts.items()}
        for index, (_, system, user) in enumerate(templates.stages):
            sites[("pipeline", index, "user")] = user
            if system is not None:
                sites[("pipeline", index, "system")] = system
        fixed = spec.fixed_parameters()
        for params in _representative_params(spec, fixed):
            outputs: dict[str, str] = {}
            for index, stage in enumerate(spec.pipeline):
                stage_params = {**params, **stage.params}
                for item_index, item in enumerate(spec.items[:_TRIAL_ITEMS]):
                    try:
                        templates.render_stage(index, stage_params, item, outputs)
                    except TemplateLimitExceeded as exc:
                        self.add(("pipeline", index), f"{_TOO_EXPENSIVE}: {exc}")
                        return
                    except (UndefinedError, SecurityError, KeyError, TypeError) as exc:
                        path, line = _failure_site(exc, sites)
                        where = f"dataset item {item_index}"
                        if "prompt" in params and len(spec.prompts) > 1:
                            where += f", prompt {params['prompt']!r}"
                        self.add(
                            path or ("pipeline", index, "user"),
                            f"{_render_message(exc)} ({where})",
                            line,
                        )
                        return
                outputs[stage.name] = f"(output of stage {stage.name})"

    def _compiles(self, path: Path_, text: str) -> bool:
        try:
            compile_template(text)
        except TemplateSyntaxError as exc:
            self.add(path, _syntax_message(exc), exc.lineno)
            return False
        return True


_SCORER_TYPES = "keyword, format, embedding, llm_judge, human"


def _representative_params(spec: ExperimentSpec, fixed: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """One params dict per prompt choice (others at their first value): enough to render all."""
    space = spec.parameter_space()
    base = dict(fixed)
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


_NO_ATTRIBUTE = re.compile(r"^'.+' has no attribute '(?P<name>.+)'$")
_UNDEFINED = re.compile(r"^'(?P<name>.+)' is undefined$")
_UNCLOSED = re.compile(r"The innermost block that needs to be closed is '(?P<tag>\w+)'")


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


def _within(parent: str, path: str) -> bool:
    """Whether formatted `path` is `parent` or inside it."""
    return not parent or path == parent or path.startswith((f"{parent}.", f"{parent}["))


def _has_child(node: Any, part: str | int) -> bool:
    if isinstance(node, dict):
        return part in node
    return isinstance(node, list) and isinstance(part, int) and part < len(node)


def _is_branch_tag(part: str) -> bool:
    return part in _BRANCH_MODELS or part.startswith(("list[", "dict[")) or part in _SCALAR_TAGS


#: Keys of our models that could be mistaken for pydantic's union-branch tags.
_MODEL_KEYS = {"format", "embedding", "keyword"}
_SCALAR_TAGS = {"str", "int", "float", "bool", "none", "literal['grid','random','guided','racing']"}
_BRANCH_MODELS = {
    "InlineEndpoint": InlineEndpoint,
    "DatasetFile": DatasetFile,
    "keyword": KeywordScorerSpec,
    "format": FormatScorerSpec,
    "embedding": EmbeddingScorerSpec,
    "llm_judge": LlmJudgeScorerSpec,
}


def _branch_fits(tag: str, node: Any) -> bool:
    if tag.startswith("list["):
        return isinstance(node, list)
    if tag.startswith("dict[") or tag in _BRANCH_MODELS:
        return isinstance(node, dict)
    return not isinstance(node, dict | list)


def _model_at(path: Path_, data: dict[str, Any]) -> type[pydantic.BaseModel] | None:
    if path == ():
        return ExperimentSpec
    if path == ("sweep",):
        return SweepSettings
    if path in (("endpoint",),):
        return InlineEndpoint
    if path == ("dataset",):
        return DatasetFile
    if len(path) == 2 and path[0] == "pipeline":
        return StageSpec
    if len(path) == 2 and path[0] == "scorers" and isinstance(path[1], int):
        try:
            kind = data["scorers"][path[1]].get("type")
        except (KeyError, IndexError, AttributeError):
            return None
        return _BRANCH_MODELS.get(str(kind))
    return None


def _suggest(key: str, known: list[str]) -> str:
    close = difflib.get_close_matches(key, known, n=1)
    if close:
        return f" (did you mean {close[0]!r}?)"
    return f" (expected one of: {', '.join(known)})" if known else ""


def _short(value: Any, limit: int = 80) -> str:
    text = json.dumps(value, default=str) if not isinstance(value, str) else repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _few(indices: list[int]) -> str:
    shown = ", ".join(str(i) for i in indices[:5])
    return shown + (f" and {len(indices) - 5} more" if len(indices) > 5 else "")
