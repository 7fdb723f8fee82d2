"""Evolve: race the prompts, have a proposer model write better ones, race again, and judge the
winner on items the proposer never saw.

The items are split once (seeded) into training items and `holdout` held-out ones. Generation 0
races the experiment's own configs (every prompt x every other swept value) on the training
items, as `racing` does: one seeded order, `items_per_round` a round, a survivor the leader
confidently beats eliminated, one confidently within `min_effect` of it declared equivalent.
When a generation's race is over, the proposer is shown the best prompts with their training
scores and the leader's lowest-scored training items, and writes `proposals` new templates
(`ProposalSource`, which checks them: see `evolve_prompts`). Each accepted one runs with the
leader's other parameters, and races the survivors from the first training item on; a
survivor runs only the items it has not run yet, so carrying it costs nothing. After the last
generation, the best `top_k` survivors and generation 0's winner (the best hand-written config)
run on the held-out items, where the winner is chosen.

Each generation's comparisons are at alpha / (its candidates - 1). Like racing, every batch
is rebuilt from the history (and the stored proposals), so a resumed sweep decides exactly as
an uninterrupted one; only the proposer's calls need I/O, done in `prepare` before a batch.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from ..domain.errors import BadInput
from ..domain.experiment import SweepSettings
from ..store.evolve import Proposal
from .racing import MIN_SHARED, Judge
from .search_space import Config, Space, config_key, grid_configs
from .sequential import PairedSums
from .strategy import Batch, Decision, History, Strategy


def split_items(n_items: int, holdout: float, seed: int) -> tuple[list[int], list[int]]:
    """(training items, held-out items), seeded; at least one of each when `holdout` > 0 and
    at least MIN_SHARED training items, else BadInput."""
    held_count = round(n_items * holdout)
    if holdout > 0 and held_count == 0 and n_items > MIN_SHARED:
        held_count = 1
    if n_items - held_count < MIN_SHARED:
        raise BadInput(
            f"strategy evolve needs at least {MIN_SHARED} training items: the dataset has "
            f"{n_items} and sweep.holdout {holdout:g} holds out {held_count}"
        )
    held = sorted(random.Random(f"{seed}:holdout").sample(range(n_items), held_count))
    chosen = set(held)
    return [i for i in range(n_items) if i not in chosen], held


def default_max_runs(n_configs: int, n_items: int, settings: SweepSettings) -> int:
    """evolve's budget when `max_runs` is not set: twice a grid of the experiment's own
    `n_configs` over every item, and at least what probing every generation's proposals (and
    generation 0's configs) on two blocks takes beside the held-out runs."""
    _, held_out = split_items(n_items, settings.holdout, settings.seed)
    reserve = (settings.top_k + 1) * len(held_out)
    probe = _probe_blocks(settings) * settings.items_per_round
    probing = (settings.generations + 1) * max(n_configs, settings.proposals) * probe
    return max(2 * n_configs * n_items, reserve + probing) * settings.repeats


def _probe_blocks(settings: SweepSettings) -> int:
    """Blocks a proposal runs before it may be stopped behind the leader."""
    return max(2, -(-MIN_SHARED // settings.items_per_round))


@dataclass(frozen=True)
class ShownPrompt:
    """A prompt as the proposer sees it: its training mean over `n` items."""

    name: str
    template: str
    score: float
    n: int


@dataclass(frozen=True)
class Brief:
    """What the proposer of `generation` is given."""

    generation: int
    best: list[ShownPrompt]
    #: The leader (its config key and parameters) and the training items it ran.
    leader_key: str
    leader_config: Config
    trained: list[int]
    #: Every prompt so far, by name: proposals must differ from them.
    known: dict[str, str]
    #: Prompts tried before that are not among `best`, best first (at most TRIED_SHOWN): what
    #: the proposer should not write again (OPRO shows its optimiser the same trajectory).
    tried: list[ShownPrompt] = field(default_factory=list)


#: Prompts tried before shown to the proposer, at most.
TRIED_SHOWN = 12


class ProposalSource(Protocol):
    async def propose(self, brief: Brief) -> list[Proposal]:
        """The generation's proposals (stored ones on a resumed sweep), accepted ones named."""
        ...


@dataclass
class _Generation:
    index: int
    candidates: list[Config]
    keys: list[str]
    #: The blocks of training items each candidate has run.
    done: list[set[int]]
    #: The order this generation visits the blocks in.
    blocks: list[int]
    judge: Judge
    alive: list[int]
    #: The first `carried` candidates are the last generation's survivors.
    carried: int = 0
    #: The most runs this generation may make (max_runs); None: no limit.
    cap: int | None = None
    spent: int = 0
    rounds: int = 0
    over: bool = False


@dataclass
class _Walk:
    """The batches planned so far and where the walk stands."""

    batches: list[Batch] = field(default_factory=list)
    generations: list[_Generation] = field(default_factory=list)
    #: Decisions made but not yet recorded by a batch.
    pending: dict[str, Decision] = field(default_factory=dict)
    #: Generation 0's winner: the best hand-written config.
    hand_written: Config | None = None
    #: Runs (repeats included) of the batches planned so far.
    spent: int = 0
    finished: bool = False


class EvolveStrategy(Strategy):
    adaptive = True

    def __init__(
        self,
        space: Space,
        settings: SweepSettings,
        n_items: int,
        *,
        parameter: str,
        prompts: Mapping[str, str],
        fixed_prompt: str | None = None,
        source: ProposalSource | None = None,
    ) -> None:
        super().__init__(space, settings, n_items)
        self.parameter = parameter
        #: The prompt every config of generation 0 runs when the parameter is not swept.
        self._fixed_prompt = fixed_prompt
        #: Every prompt the sweep may run, by name: the experiment's, then accepted proposals.
        self.prompts = dict(prompts)
        self._source = source
        self.train, self.held_out = split_items(n_items, settings.holdout, settings.seed)
        order = list(self.train)
        random.Random(f"{settings.seed}:items").shuffle(order)
        step = settings.items_per_round
        #: The training items in seeded blocks of `items_per_round`: every batch runs whole
        #: blocks, so a config has run a block entirely or not at all.
        self._blocks = [order[i : i + step] for i in range(0, len(order), step)]
        # Every config names its prompt, the fixed one too: a leaderboard then reads `plain`
        # beside `g1.1`, not an empty config.
        self._initial = [
            config if fixed_prompt is None else {parameter: fixed_prompt, **config}
            for config in grid_configs(space)
        ]
        self._proposals: dict[int, list[Proposal]] = {}
        self._walk = _Walk()
        self._check_budget()

    def _check_budget(self) -> None:
        budget = self.settings.max_runs
        if budget is None:
            return
        first = len(self._initial) * min(self.settings.items_per_round, len(self.train))
        reserve = self._finalist_count() * len(self.held_out)
        least = (first * (self.settings.generations + 1) + reserve) * self.settings.repeats
        if least > budget:
            raise BadInput(
                f"sweep.max_runs is {budget}, but evolve needs at least {least}: a round of "
                f"the {len(self._initial)} starting configs for each of its "
                f"{self.settings.generations + 1} generations' shares, and {reserve} held-out "
                "runs for the finalists"
            )

    # -- the Strategy interface -------------------------------------------------------------

    async def prepare(self, number: int, history: History) -> None:
        """Ask the proposer for every generation the walk up to batch `number` needs."""
        while (brief := self._advance(number, history)) is not None:
            if self._source is None:
                raise RuntimeError("an evolve sweep needs a proposal source to go on")
            proposals = await self._source.propose(brief)
            self._proposals[brief.generation] = proposals
            for proposal in proposals:
                if proposal.name is not None:
                    self.prompts[proposal.name] = proposal.template

    def next_batch(self, number: int, history: History) -> Batch | None:
        brief = self._advance(number, history)
        if brief is not None:
            if self._source is None:  # a dry run: what comes after the proposer is unknown
                return None
            raise RuntimeError(f"batch {number} needs generation {brief.generation}: prepare it")
        walk = self._walk
        return walk.batches[number] if number < len(walk.batches) else None

    def plan_size(self) -> tuple[int, int]:
        most = len(self._initial) + self.settings.generations * self.settings.proposals
        return most, self.n_items

    def known_runs(self) -> tuple[list[Config], list[int]]:
        """Generation 0 races the experiment's configs on the training items."""
        return [dict(c) for c in self._initial], list(self.train)

    # -- the walk ----------------------------------------------------------------------------

    def _advance(self, number: int, history: History) -> Brief | None:
        """Plan batches until batch `number` is planned or the sweep is over; the proposer's
        brief when a generation it has not answered stands in the way."""
        walk = self._walk
        while len(walk.batches) <= number and not walk.finished:
            if not walk.generations:
                self._start(0, [], self._initial)
                continue
            generation = walk.generations[-1]
            if not generation.over:
                self._round(generation, history)
                continue
            if generation.index == 0 and walk.hand_written is None:
                walk.hand_written = self._ranked(generation, history)[0][1]
            if generation.index < self.settings.generations:
                following = generation.index + 1
                if following not in self._proposals:
                    return self._brief(following, generation, history)
                self._next_generation(generation, self._proposals[following], history)
                continue
            self._hold_out(generation, history)
        return None

    def _start(self, index: int, carried: list[tuple[Config, set[int]]], new: list[Config]) -> None:
        candidates = [config for config, _ in carried] + new
        keys = [config_key(c) for c in candidates]
        done = [set(blocks) for _, blocks in carried] + [set() for _ in new]
        # Each generation probes its proposals on blocks the last one did not start with: a
        # leader that won by luck on the first items must not judge every later proposal on
        # those same items.
        count = len(self._blocks)
        offset = (index * self._probe_blocks()) % count if index else 0
        generation = _Generation(
            index=index,
            candidates=candidates,
            keys=keys,
            done=done,
            blocks=[(offset + b) % count for b in range(count)],
            judge=Judge(keys, len(candidates) - 1, self.settings),
            alive=list(range(len(candidates))),
            carried=len(carried),
            cap=self._generation_cap(index),
        )
        # A later generation without a new config has nothing to race (generation 0 runs a
        # lone config a round, so that the proposer sees how it does).
        generation.over = index > 0 and len(candidates) < 2
        self._walk.generations.append(generation)

    def _round(self, generation: _Generation, history: History) -> None:
        """Plan the generation's next round, after looking at the one before."""
        if generation.rounds > 0:
            raced = self._items_of(generation.blocks[: generation.rounds])
            decided = generation.judge.look(generation.alive, raced, history)
            decided.update(self._behind(generation, raced, decided, history))
            for i, decision in decided.items():
                self._walk.pending[generation.keys[i]] = decision
            generation.alive = [i for i in generation.alive if i not in decided]
        if generation.rounds >= len(generation.blocks) or (
            generation.rounds > 0 and len(generation.alive) < 2
        ):
            generation.over = True
            return
        block = generation.blocks[generation.rounds]
        items = self._blocks[block]
        running = [i for i in generation.alive if block not in generation.done[i]]
        runs = len(running) * len(items) * self.settings.repeats
        if generation.cap is not None and generation.spent + runs > generation.cap:
            generation.over = True  # its share of max_runs is spent
            return
        generation.rounds += 1
        generation.spent += runs
        self._walk.spent += runs
        for i in running:
            generation.done[i].add(block)
        if running:
            self._emit([generation.candidates[i] for i in running], items)

    def _behind(
        self,
        generation: _Generation,
        raced: list[int],
        decided: Mapping[int, Decision],
        history: History,
    ) -> dict[int, Decision]:
        """New configs that scored below the leader on the same items once they have run
        `probe` of them: they stop (a proposal that starts behind rarely wins, and every
        item it runs is paid), with no claim of significance."""
        if generation.index == 0:
            return {}
        probe = max(MIN_SHARED, self._probe_blocks() * self.settings.items_per_round)
        alive = [i for i in generation.alive if i not in decided]
        if len(alive) < 2:
            return {}
        leader = generation.judge.leader(alive, raced, history)
        leader_scores = history.item_scores(generation.keys[leader])
        behind: dict[int, Decision] = {}
        for i in alive:
            if i == leader or i < generation.carried:
                continue
            scores = history.item_scores(generation.keys[i])
            shared = [item for item in raced if item in scores and item in leader_scores]
            if len(shared) < probe:
                continue
            sums = PairedSums()
            for item in shared:
                sums.add(leader_scores[item] - scores[item])
            if sums.mean > 0:
                p = sums.compare(self.settings.alpha).p_value(0.0)
                behind[i] = Decision("behind", len(shared), generation.keys[leader], round(p, 6))
        return behind

    def _probe_blocks(self) -> int:
        return _probe_blocks(self.settings)

    def _items_of(self, blocks: Sequence[int]) -> list[int]:
        return [item for block in blocks for item in self._blocks[block]]

    def _generation_cap(self, index: int) -> int | None:
        """With max_runs: an equal share of what is left, after the held-out runs are set
        aside, for this generation and each one after it."""
        budget = self.settings.max_runs
        if budget is None:
            return None
        reserve = self._finalist_count() * len(self.held_out) * self.settings.repeats
        left = budget - reserve - self._walk.spent
        return max(0, left // (self.settings.generations + 1 - index))

    def _finalist_count(self) -> int:
        return self.settings.top_k + 1

    def _emit(self, configs: list[Config], items: list[int]) -> None:
        walk = self._walk
        walk.batches.append(Batch([dict(c) for c in configs], list(items), walk.pending))
        walk.pending = {}

    def _ranked(self, generation: _Generation, history: History) -> list[tuple[float, Config, int]]:
        """The generation's survivors, best training mean first: (mean, config, candidate)."""
        raced = self._raced(generation)
        ranked = [
            (generation.judge.mean(i, raced, history), generation.candidates[i], i)
            for i in generation.alive
        ]
        ranked.sort(key=lambda entry: (-entry[0], entry[2]))
        return ranked

    def _raced(self, generation: _Generation) -> list[int]:
        """The training items any survivor has run, in the generation's order."""
        done = set().union(*(generation.done[i] for i in generation.alive))
        return self._items_of([b for b in generation.blocks if b in done])

    def _brief(self, following: int, generation: _Generation, history: History) -> Brief:
        ranked = self._ranked(generation, history)
        raced = self._raced(generation)
        shown: dict[str, ShownPrompt] = {}
        for mean, config, i in ranked:
            name = self._prompt_of(config)
            if name in shown or len(shown) == self.settings.top_k:
                continue
            scores = history.item_scores(generation.keys[i])
            n = sum(1 for item in raced if item in scores)
            shown[name] = ShownPrompt(name, self.prompts[name], round(mean, 4), n)
        _, leader, index = ranked[0]
        return Brief(
            generation=following,
            best=list(shown.values()),
            leader_key=generation.keys[index],
            leader_config=dict(leader),
            trained=self._items_of(sorted(generation.done[index])),
            known=dict(self.prompts),
            tried=self._tried(set(shown), history),
        )

    def _tried(self, shown: set[str], history: History) -> list[ShownPrompt]:
        """Every other prompt run so far, with its mean on the training items it ran."""
        train = set(self.train)
        tried: dict[str, ShownPrompt] = {}
        for generation in self._walk.generations:
            for config, key in zip(generation.candidates, generation.keys, strict=True):
                name = self._prompt_of(config)
                scores = [s for item, s in history.item_scores(key).items() if item in train]
                if name in shown or not scores:
                    continue
                mean = round(sum(scores) / len(scores), 4)
                if name not in tried or mean > tried[name].score:
                    tried[name] = ShownPrompt(name, self.prompts[name], mean, len(scores))
        return sorted(tried.values(), key=lambda p: (-p.score, p.name))[:TRIED_SHOWN]

    def _next_generation(
        self, generation: _Generation, proposals: Sequence[Proposal], history: History
    ) -> None:
        ranked = self._ranked(generation, history)
        carried = [(config, generation.done[i]) for _, config, i in ranked]
        leader = ranked[0][1]
        new = [{**leader, self.parameter: p.name} for p in proposals if p.name is not None]
        self._start(generation.index + 1, carried, new)

    def _hold_out(self, generation: _Generation, history: History) -> None:
        walk = self._walk
        walk.finished = True
        finalists = [config for _, config, _ in self._ranked(generation, history)]
        finalists = finalists[: self._finalist_count() - 1]
        if walk.hand_written is not None and walk.hand_written not in finalists:
            finalists.append(walk.hand_written)
        if self.held_out:
            self._emit(finalists, self.held_out)
        elif walk.pending:
            self._emit([], [])

    def _prompt_of(self, config: Mapping[str, object]) -> str:
        value = config.get(self.parameter, self._fixed_prompt)
        assert isinstance(value, str), "an evolve config names its prompt"
        return value
