"""The scorer interface and the registry that builds scorers from their specs by `type`."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar


@dataclass(frozen=True)
class ScoreContext:
    """Everything a scorer may look at besides the output it scores."""

    item: Mapping[str, Any]  # the dataset row
    params: Mapping[str, Any]  # the run's parameters
    stage_outputs: Mapping[str, str]  # outputs of every stage, by stage name
    llm: Any | None = None  # LLM access, for scorers that call models


class ScorerError(Exception):
    """A scorer could not score this output; the message says why.

    Recorded on the run; the run's other scores still count.
    """


class Scorer(ABC):
    """Scores one output in [0, 1]. Subclasses set `type` and register with `@register`."""

    type: ClassVar[str]
    spends_tokens: ClassVar[bool] = False  # True for scorers that call an LLM

    def __init__(self, spec: Any) -> None:
        self.spec = spec

    @property
    def weight(self) -> float:
        """The scorer's weight in a run's combined score (from the spec)."""
        return float(self.spec.weight)

    @abstractmethod
    async def score(self, input: Any, output: str, context: ScoreContext) -> float:
        """A score in [0, 1] for `output`; raises ScorerError when it cannot score it."""


_ScorerClass = TypeVar("_ScorerClass", bound=type[Scorer])

_REGISTRY: dict[str, type[Scorer]] = {}


def register(cls: _ScorerClass) -> _ScorerClass:
    """Class decorator: make `build_scorer` build `cls` for specs whose type is `cls.type`."""
    existing = _REGISTRY.get(cls.type)
    if existing is not None and existing is not cls:
        raise ValueError(f"scorer type {cls.type!r} is already registered by {existing.__name__}")
    _REGISTRY[cls.type] = cls
    return cls


def build_scorer(spec: Any) -> Scorer:
    """The scorer for `spec` (chosen by `spec.type`); KeyError naming known types if unknown."""
    try:
        cls = _REGISTRY[spec.type]
    except KeyError:
        known = ", ".join(registered_types()) or "none"
        raise KeyError(f"no scorer registered for type {spec.type!r} (known: {known})") from None
    return cls(spec)


def registered_types() -> list[str]:
    """The registered scorer types, sorted."""
    return sorted(_REGISTRY)
