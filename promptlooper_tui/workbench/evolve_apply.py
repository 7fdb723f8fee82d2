"""`evolve apply`: an evolve sweep's winning prompt as a new version of its experiment, the
text the person wrote kept (comments, order, styles), and, for the person at the terminal, as
a file beside the original."""

from __future__ import annotations

import asyncio
import contextlib
import os
import uuid
from pathlib import Path

from pydantic import ValidationError as PydanticValidationError

from ..domain.errors import BadInput, Conflict
from ..domain.experiment import ExperimentSpec
from ..domain.records import Evolution, ExperimentDetail, ProposalRecord, Record, SweepRecord
from ..engine.evolve_parameter import starting_prompts
from .evolution import evolution
from .experiments import Experiments
from .lookups import ACTIVE_STATES, load_spec
from .rankings import Rankings
from .services import Services
from .sweeps import Sweeps

#: The suffix of the file `evolve apply` writes: `notes.yaml` becomes `notes.evolved.yaml`.
EVOLVED_SUFFIX = ".evolved.yaml"


class EvolvedExperiment(Record):
    """What `evolve apply` did: the sweep's winning `prompt` and its `template`; when it is an
    evolved one (`applied`), the new `version` of the experiment, its `text`, and the `file`
    written (None when none was asked for). When the winner is one of the experiment's own
    prompts, nothing is applied and `version`, `text` and `file` are None."""

    sweep_id: str
    experiment_id: str
    experiment: str
    parameter: str
    prompt: str
    template: str
    applied: bool
    version: int | None = None
    text: str | None = None
    file: str | None = None


class EvolutionApply:
    """`Workbench.apply_evolution`, from the parts it reads and writes through."""

    def __init__(
        self, services: Services, experiments: Experiments, sweeps: Sweeps, rankings: Rankings
    ) -> None:
        self._services = services
        self._experiments = experiments
        self._sweeps = sweeps
        self._rankings = rankings

    async def apply(
        self, sweep_ref: str, *, write_file: bool, out: Path | None, overwrite: bool
    ) -> EvolvedExperiment:
        """See `Workbench.apply_evolution`."""
        sweep = await self._sweeps.get_sweep(sweep_ref)
        lineage = await evolution(self._services.db, self._sweeps, sweep.id)
        if sweep.status in ACTIVE_STATES:
            raise Conflict(
                f"sweep {sweep.id} is still {sweep.status}; apply it once it has finished"
            )
        board = await self._rankings.ranking(sweep.experiment_id, top=1, sweep=sweep.id)
        if not board.entries:
            raise BadInput(f"sweep {sweep.id} has no completed runs: it has no winner to apply")
        name = board.entries[0].config.get(lineage.parameter)
        if name is None:  # the prompt parameter is not swept: gen 0's configs do not carry it
            spec = await load_spec(self._services.db, sweep.experiment_id, sweep.experiment_version)
            name = starting_prompts(spec, lineage.parameter)[0]
        name = str(name)
        template = lineage.template(name)
        if template is None:
            raise BadInput(f"sweep {sweep.id}'s winner uses prompt {name!r}, which it never stored")
        result = EvolvedExperiment(
            sweep_id=sweep.id,
            experiment_id=sweep.experiment_id,
            experiment=sweep.experiment,
            parameter=lineage.parameter,
            prompt=name,
            template=template,
            applied=False,
        )
        proposal = lineage.proposal(name)
        if proposal is None:
            return result
        original = await self._experiments.get_experiment(
            sweep.experiment_id, version=sweep.experiment_version
        )
        file = None
        if write_file:
            file = (out or default_evolved_path(original)).absolute()
            if file.exists() and not overwrite:
                raise Conflict(f"{file} exists; name another file with --out, or --force")
        # ruamel.yaml takes tens of ms of CPU: off the event loop, which serves the daemon's
        # other clients meanwhile.
        text = await asyncio.to_thread(_evolved_text, original, lineage, proposal, sweep, file)
        spec = _evolved_spec(original, lineage.parameter, name, template)
        if file is not None:
            write_atomically(file, text)
        from ..engine.loader import LoadedExperiment  # here: reads skip the loader

        # The new version's source says where relative dataset files resolve: the file
        # written, else the original's file (the text names the dataset file it named).
        source = str(file) if file is not None else original.source_file or f"evolved by {sweep.id}"
        loaded = LoadedExperiment(spec=spec, text=text, source=source)
        imported = await self._experiments.import_experiment(loaded)
        return result.model_copy(
            update={
                "applied": True,
                "version": imported.version,
                "text": text,
                "file": None if file is None else str(file),
            }
        )


def default_evolved_path(original: ExperimentDetail) -> Path:
    """`STEM.evolved.yaml` beside the file the version came from, when known and writable
    (applying a sweep of `notes.evolved.yaml` targets that file again); else
    `./NAME.evolved.yaml`."""
    if original.source_file is not None:
        source = Path(original.source_file)
        if source.parent.is_dir() and os.access(source.parent, os.W_OK):
            stem = source.name.removesuffix(source.suffix).removesuffix(".evolved")
            return source.parent / (stem + EVOLVED_SUFFIX)
    return Path.cwd() / (original.name + EVOLVED_SUFFIX)


def write_atomically(file: Path, text: str) -> None:
    """Write `text` to `file` through a temporary file beside it renamed over it: a reader
    never sees half a file, and a failure leaves what was there."""
    temporary = file.with_name(f".{file.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        handle = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        with open(handle, "w", encoding="utf-8") as stream:
            stream.write(text)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, file)
    except OSError as exc:
        with contextlib.suppress(OSError):
            temporary.unlink()
        raise BadInput(f"cannot write {file}: {exc.strerror or exc}") from None


def _evolved_text(
    original: ExperimentDetail,
    lineage: Evolution,
    proposal: ProposalRecord,
    sweep: SweepRecord,
    file: Path | None,
) -> str:
    from ..engine.experiment_rewrite import with_prompt  # here: only this command loads ruamel

    assert proposal.name is not None
    parents = ", ".join(proposal.parents) or "no parent"
    note = (
        f"{proposal.name}: written by evolve sweep {sweep.id} (generation "
        f"{proposal.generation}, from {parents})\n{proposal.rationale}"
    )
    source = Path(original.source_file).parent if original.source_file else None
    return with_prompt(
        original.spec_yaml,
        parameter=lineage.parameter,
        name=proposal.name,
        template=proposal.template,
        note=note,
        dataset_from=source,
        dataset_to=None if file is None else file.parent,
    )


def _evolved_spec(
    original: ExperimentDetail, parameter: str, name: str, template: str
) -> ExperimentSpec:
    """The original spec (its dataset inlined: no dataset file is read again) with prompt
    `name` added and chosen first, as `_evolved_text` writes it."""
    data = dict(original.spec)
    data["prompts"] = {name: template, **data["prompts"]}
    values = data["parameters"][parameter]
    chosen = [name, *values] if isinstance(values, list) else name
    data["parameters"] = {**data["parameters"], parameter: chosen}
    try:
        return ExperimentSpec.model_validate(data)
    except PydanticValidationError as exc:
        raise BadInput(f"the evolved experiment is not valid: {exc.errors()[0]['msg']}") from None
