"""Load and validate experiment files: every problem at once, with file, field path and line.

Validation runs in three passes over one parse of the YAML (`experiment_yaml`): the document's
shape (pydantic, unknown keys are errors; told in `experiment_shape`), the experiment's meaning
(parameter ranges, prompt names, scorer fields, JSON Schemas, the dataset file bound into the
document), and a trial render of every template against the dataset (`template_trials`), so a
Jinja syntax error or an unknown variable is caught before any token is spent.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pydantic

from ..domain.errors import Issue, ValidationError
from ..domain.experiment import (
    API_PARAMETERS,
    CategoricalParameter,
    EmbeddingScorerSpec,
    ExperimentSpec,
    FormatScorerSpec,
    KeywordScorerSpec,
    LlmJudgeScorerSpec,
    RangeParameter,
    parse_parameter,
)
from ..domain.trust import CallerPolicy
from .datasets import DatasetReadError, read_dataset
from .experiment_shape import shape_issues
from .experiment_yaml import (
    ParsedExperiment,
    Path_,
    check_values,
    format_path,
    line_of,
    parse_experiment_yaml,
)
from .limits import Limits, TooExpensive, check_sweep_size, default_limits
from .template_trials import judge_prompt_issue, pipeline_issue, syntax_issue


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
        for path, message in shape_issues(self.data):
            self.add(path, message)

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
            issue = judge_prompt_issue((*path, "prompt"), scorer.prompt, spec)
            if issue is not None:
                self.add(*issue)

    # -- pass 3: templates ---------------------------------------------------------------------

    def _check_templates(self, spec: ExperimentSpec) -> None:
        issue = pipeline_issue(spec)
        if issue is not None:
            self.add(*issue)

    def _compiles(self, path: Path_, text: str) -> None:
        issue = syntax_issue(path, text)
        if issue is not None:
            self.add(*issue)


def _few(indices: list[int]) -> str:
    shown = ", ".join(str(i) for i in indices[:5])
    return shown + (f" and {len(indices) - 5} more" if len(indices) > 5 else "")
