"""The experiment file's model (DESIGN.md section 4), validated by pydantic. No I/O here."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

#: Request parameters the OpenAI chat API knows; these are sent, any others are template-only.
API_PARAMETERS = frozenset(
    {
        "model",
        "temperature",
        "top_p",
        "max_tokens",
        "seed",
        "presence_penalty",
        "frequency_penalty",
        "stop",
        "response_format",
    }
)

#: The endpoint name that means "the built-in simulated endpoint, started in-process".
SIMULATED_ENDPOINT = "simulated"

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")

Scalar = str | int | float | bool | None


class StrictModel(BaseModel):
    """Unknown keys are errors: a typo must never be silently ignored."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class InlineEndpoint(StrictModel):
    base_url: str
    api_key_env: str | None = None

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("expected an http:// or https:// URL")
        return value.rstrip("/")


EndpointRef = str | InlineEndpoint


class RangeParameter(StrictModel):
    """A numeric range: random and guided sample inside it, grid takes `steps` even points."""

    min: int | float
    max: int | float
    steps: int = Field(default=3, ge=2, le=1000)

    @model_validator(mode="after")
    def _ordered(self) -> RangeParameter:
        if self.max < self.min:
            raise ValueError(f"max ({self.max}) must not be below min ({self.min})")
        return self

    @property
    def integral(self) -> bool:
        """Whole-number ranges ({min: 64, max: 512}) sample whole numbers; 0.0-1.0 does not."""
        return isinstance(self.min, int) and isinstance(self.max, int)

    def grid_values(self) -> list[float | int]:
        step = (self.max - self.min) / (self.steps - 1)
        values = [self.min + i * step for i in range(self.steps)]
        if self.integral:
            return sorted({round(v) for v in values})
        return [round(v, 6) for v in values]


class CategoricalParameter(StrictModel):
    values: list[Any] = Field(min_length=1)


ParameterSpec = CategoricalParameter | RangeParameter | Scalar | dict[str, Any]


class StageSpec(StrictModel):
    name: str
    system: str | None = None
    user: str
    params: dict[str, Any] = Field(default_factory=dict)

    @field_validator("name")
    @classmethod
    def _identifier(cls, value: str) -> str:
        if not _IDENTIFIER.match(value):
            raise ValueError("expected an identifier (letters, digits, _), usable as stages.NAME")
        return value


class DatasetFile(StrictModel):
    file: str


class _ScorerBase(StrictModel):
    name: str | None = None
    weight: float = Field(default=1.0, ge=0)


class KeywordScorerSpec(_ScorerBase):
    type: Literal["keyword"]
    required_present: list[str] = Field(default_factory=list)
    required_present_from: str | None = None
    required_absent: list[str] = Field(default_factory=list)
    case_sensitive: bool = False

    @model_validator(mode="after")
    def _has_checks(self) -> KeywordScorerSpec:
        if not (self.required_present or self.required_present_from or self.required_absent):
            raise ValueError(
                "a keyword scorer needs required_present, required_present_from or required_absent"
            )
        return self


class FormatScorerSpec(_ScorerBase):
    type: Literal["format"]
    format: Literal["json", "markdown", "length", "structure"]
    min_tokens: int | None = Field(default=None, ge=0)
    max_tokens: int | None = Field(default=None, ge=1)
    schema_: dict[str, Any] | None = Field(default=None, alias="schema")

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @model_validator(mode="after")
    def _needs(self) -> FormatScorerSpec:
        if self.format == "structure" and self.schema_ is None:
            raise ValueError("format: structure needs a `schema:` (a JSON Schema)")
        if self.format == "length" and self.min_tokens is None and self.max_tokens is None:
            raise ValueError("format: length needs min_tokens and/or max_tokens")
        return self


class EmbeddingScorerSpec(_ScorerBase):
    type: Literal["embedding"]
    endpoint: EndpointRef | None = None
    model: str
    reference_field: str = "reference"


class LlmJudgeScorerSpec(_ScorerBase):
    type: Literal["llm_judge"]
    endpoint: EndpointRef | None = None
    model: str
    prompt: str
    params: dict[str, Any] = Field(default_factory=dict)


class HumanScorerSpec(_ScorerBase):
    type: Literal["human"]


ScorerSpec = Annotated[
    KeywordScorerSpec
    | FormatScorerSpec
    | EmbeddingScorerSpec
    | LlmJudgeScorerSpec
    | HumanScorerSpec,
    Field(discriminator="type"),
]

SCORER_TYPES = ("keyword", "format", "embedding", "llm_judge", "human")


class ProposerSpec(StrictModel):
    """evolve: the model that writes the next prompt templates (an endpoint's name or inline
    endpoint, default the experiment's own; request parameters such as temperature)."""

    endpoint: EndpointRef | None = None
    model: str = Field(min_length=1)
    params: dict[str, Any] = Field(default_factory=dict)


class SweepSettings(StrictModel):
    strategy: Literal["grid", "random", "guided", "racing", "evolve"] = "grid"
    samples: int | None = Field(default=None, ge=1)
    repeats: int = Field(default=1, ge=1, le=1000)
    seed: int = 0
    max_concurrency: int = Field(default=8, ge=1, le=1024)
    max_tokens: int | None = Field(default=None, ge=1)
    stream: bool = False
    top_k: int = Field(default=3, ge=1)
    explore: float = Field(default=0.25, ge=0, le=1)
    items_per_round: int = Field(default=2, ge=1)
    alpha: float = Field(default=0.05, gt=0, lt=1)
    #: racing and guided: a score difference too small to matter. A config confidently within
    #: it of the leader is declared equivalent and stops being run; 0 turns equivalence off.
    min_effect: float = Field(default=0.02, ge=0, lt=1)
    #: racing, guided and evolve: the most runs the sweep makes (repeats included); it ends
    #: before a batch that would pass it, and the best survivor wins. None: no limit (evolve:
    #: its default budget, `engine.evolve.default_max_runs`).
    max_runs: int | None = Field(default=None, ge=1)
    #: Seconds one call may wait on 429 answers in all before its run fails. None: the
    #: endpoint's own setting (`endpoints add --rate-limit-wait`), else 600.
    rate_limit_wait_s: float | None = Field(default=None, ge=1, le=86_400)
    #: evolve: rounds of proposals after the experiment's own prompts (generation 0).
    generations: int = Field(default=3, ge=1, le=50)
    #: evolve: new prompt templates the proposer writes per generation.
    proposals: int = Field(default=4, ge=1, le=20)
    #: evolve: the model that writes them (required by evolve).
    proposer: ProposerSpec | None = None
    #: evolve: the share of items held out: the proposer never sees them, the winner is
    #: judged on them.
    holdout: float = Field(default=0.3, ge=0, le=0.8)

    @model_validator(mode="after")
    def _evolve_has_proposer(self) -> SweepSettings:
        if self.strategy == "evolve" and self.proposer is None:
            raise ValueError(
                "strategy evolve needs a proposer: add `proposer: {model: NAME}` under `sweep:` "
                "(optionally `endpoint:` and `params:`), or run with --proposer MODEL"
            )
        return self


class ExperimentSpec(StrictModel):
    name: str
    description: str = ""
    endpoint: EndpointRef = SIMULATED_ENDPOINT
    parameters: dict[str, Any] = Field(min_length=1)
    prompts: dict[str, str] = Field(default_factory=dict)
    pipeline: list[StageSpec] = Field(min_length=1)
    dataset: list[dict[str, Any]] | DatasetFile
    scorers: list[ScorerSpec] = Field(default_factory=list)
    sweep: SweepSettings = Field(default_factory=SweepSettings)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not _NAME.match(value):
            raise ValueError("expected a name of letters, digits, '-', '_' or '.'")
        return value

    @property
    def items(self) -> list[dict[str, Any]]:
        """The dataset rows; a file dataset must be resolved (inlined) by the loader first."""
        if isinstance(self.dataset, DatasetFile):
            raise RuntimeError("dataset file not resolved; load the experiment with the loader")
        return self.dataset

    def parameter_space(self) -> dict[str, CategoricalParameter | RangeParameter]:
        """The swept parameters: lists with more than one value, and ranges."""
        space: dict[str, CategoricalParameter | RangeParameter] = {}
        for name, raw in self.parameters.items():
            parsed = parse_parameter(raw)
            if isinstance(parsed, RangeParameter) or (
                isinstance(parsed, CategoricalParameter) and len(parsed.values) > 1
            ):
                space[name] = parsed
        return space

    def fixed_parameters(self) -> dict[str, Any]:
        """Parameters with a single value (scalars, one-element lists)."""
        fixed: dict[str, Any] = {}
        for name, raw in self.parameters.items():
            parsed = parse_parameter(raw)
            if isinstance(parsed, CategoricalParameter) and len(parsed.values) == 1:
                fixed[name] = parsed.values[0]
            elif not isinstance(parsed, CategoricalParameter | RangeParameter):
                fixed[name] = parsed
        return fixed

    def scorer_name(self, index: int) -> str:
        """A stable display name for scorer `index`: its `name`, else type (+ format)."""
        scorer = self.scorers[index]
        if scorer.name:
            return scorer.name
        base = scorer.type
        if isinstance(scorer, FormatScorerSpec):
            base = f"format:{scorer.format}"
        same = [i for i in range(len(self.scorers)) if _default_name(self.scorers[i]) == base]
        return base if len(same) == 1 else f"{base}#{same.index(index) + 1}"


def _default_name(scorer: Any) -> str:
    if scorer.name:
        return str(scorer.name)
    return f"format:{scorer.format}" if isinstance(scorer, FormatScorerSpec) else str(scorer.type)


def parse_parameter(raw: Any) -> CategoricalParameter | RangeParameter | Any:
    """A list is categorical, a {min, max[, steps]} mapping a range, anything else fixed."""
    if isinstance(raw, list):
        return CategoricalParameter(values=raw)
    if isinstance(raw, dict) and {"min", "max"} <= raw.keys() <= {"min", "max", "steps"}:
        return RangeParameter.model_validate(raw)
    return raw
