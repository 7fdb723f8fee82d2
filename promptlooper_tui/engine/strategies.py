"""The sweep strategies by name: grid and random here, guided and racing in their modules."""

from __future__ import annotations

from ..domain.experiment import ExperimentSpec, SweepSettings
from .evolve import EvolveStrategy, ProposalSource, default_max_runs
from .evolve_parameter import prompt_parameter, starting_prompts
from .guided import GuidedStrategy
from .racing import RacingStrategy
from .search_space import Sampler, Space, grid_configs, sample_budget
from .strategy import Batch, History, Strategy


def _planned_configs(samples: int, sampler: Sampler) -> int:
    """At most `samples` configs, and never more than a space without ranges has."""
    return samples if sampler.size is None else min(samples, sampler.size)


class GridStrategy(Strategy):
    """Every config of the grid (ranges at their `steps` points) on every item, in one batch."""

    def __init__(self, space: Space, settings: SweepSettings, n_items: int) -> None:
        super().__init__(space, settings, n_items)
        self._configs = grid_configs(space)

    def next_batch(self, number: int, history: History) -> Batch | None:
        if number > 0:
            return None
        return Batch([dict(c) for c in self._configs], self._all_items())

    def plan_size(self) -> tuple[int, int]:
        return len(self._configs), self.n_items


class RandomStrategy(Strategy):
    """`samples` distinct uniformly random configs on every item, in one batch.

    Categorical values are chosen uniformly; ranges sample uniformly in [min, max] (integers
    for integral ranges, floats rounded to 4 decimals). A space without ranges that has at
    most `samples` configs runs all of them. BadInput without `samples` when there are ranges.
    """

    def __init__(self, space: Space, settings: SweepSettings, n_items: int) -> None:
        super().__init__(space, settings, n_items)
        self._sampler = Sampler(space)
        self._samples = sample_budget(settings, self._sampler)

    def next_batch(self, number: int, history: History) -> Batch | None:
        if number > 0:
            return None
        return Batch(self._sampler.sample(self._rng(0), self._samples, set()), self._all_items())

    def plan_size(self) -> tuple[int, int]:
        return _planned_configs(self._samples, self._sampler), self.n_items


_STRATEGIES: dict[str, type[Strategy]] = {
    "grid": GridStrategy,
    "random": RandomStrategy,
    "guided": GuidedStrategy,
    "racing": RacingStrategy,
}

#: Strategies that race their configs: they drop some early (decisions), and keep to max_runs.
RACED = frozenset({"racing", "guided"})
#: Strategies a sweep's `max_runs` holds: the races, and evolve, which races what it proposes.
BUDGETED = RACED | {"evolve"}

#: Strategies that plan as they go: until such a sweep completes, its total is an estimate.
ADAPTIVE_STRATEGIES = frozenset(
    {name for name, kind in _STRATEGIES.items() if kind.adaptive} | {"evolve"}
)


def make_strategy(space: Space, settings: SweepSettings, n_items: int) -> Strategy:
    """The strategy `settings.strategy` names over a space alone (evolve also needs the
    experiment: `strategy_for`); BadInput when random/guided lack `samples`."""
    if settings.strategy == "evolve":
        raise ValueError("evolve rewrites the experiment's prompts: use strategy_for(spec, ...)")
    return _STRATEGIES[settings.strategy](space, settings, n_items)


def sweep_settings(spec: ExperimentSpec, settings: SweepSettings) -> SweepSettings:
    """`settings` as a sweep of `spec` runs them: an evolve sweep without `max_runs` is held to
    evolve's default budget (`default_max_runs`), so what it may spend is known up front."""
    if settings.strategy != "evolve" or settings.max_runs is not None:
        return settings
    prompt_parameter(spec)  # an experiment evolve cannot rewrite says so first
    configs = len(grid_configs(spec.parameter_space()))
    budget = default_max_runs(configs, len(spec.items), settings)
    return settings.model_copy(update={"max_runs": budget})


def strategy_for(
    spec: ExperimentSpec, settings: SweepSettings, source: ProposalSource | None = None
) -> Strategy:
    """The strategy of a sweep of `spec` with `settings` (the experiment's own, or
    overridden); evolve's proposals come from `source` (None: a plan that stops at the first
    proposer call). BadInput for settings the experiment cannot be swept with."""
    space = spec.parameter_space()
    if settings.strategy != "evolve":
        return make_strategy(space, settings, len(spec.items))
    parameter = prompt_parameter(spec)
    return EvolveStrategy(
        space,
        settings,
        len(spec.items),
        parameter=parameter,
        prompts=spec.prompts,
        fixed_prompt=None if parameter in space else starting_prompts(spec, parameter)[0],
        source=source,
    )
