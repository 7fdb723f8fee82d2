"""Experiments: checking, importing (a new version when the content changed), listing,
showing, duplicating and deleting them."""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError as PydanticValidationError

from ..domain.errors import BadInput, Conflict, NotFound
from ..domain.experiment import ExperimentSpec
from ..domain.records import ExperimentDetail, ExperimentRecord, ImportResult
from ..engine.cache import canonical_json
from ..store import experiments as stored_experiments
from ..store import sweeps as stored_sweeps
from ..store.timestamps import now_iso
from .lookups import ACTIVE_STATES, effective_status, live_status, resolve_experiment
from .rankings import Rankings
from .services import Services

if TYPE_CHECKING:
    from ..engine.loader import LoadedExperiment

#: The experiment's `name:` line in its YAML (top level: no indentation).
_TOP_LEVEL_NAME = re.compile(r"^name:[ \t]*\S.*$", re.MULTILINE)


class Experiments:
    def __init__(self, services: Services, rankings: Rankings) -> None:
        self._services = services
        self._rankings = rankings

    async def validate_text(
        self, text: str, source: str = "<experiment>", base_dir: Path | None = None
    ) -> LoadedExperiment:
        """See `Workbench.validate_text`."""
        from ..engine.guard import CheckGuard  # here: reads skip the guard and the loader

        services = self._services
        if services.guard is None:
            services.guard = CheckGuard(services.limits)
        return await services.guard.load_text(
            text, source=source, base_dir=base_dir, policy=services.policy
        )

    async def import_experiment(self, loaded: LoadedExperiment) -> ImportResult:
        """See `Workbench.import_experiment`."""
        db = self._services.db
        spec = loaded.spec
        spec_json = canonical_json(spec.model_dump(mode="json", by_alias=True))
        content_hash = hashlib.sha256(spec_json.encode()).hexdigest()
        claim = stored_experiments.claim_name_statement(
            "exp_" + uuid.uuid4().hex[:10], spec.name, now_iso()
        )
        await db.write([claim])
        experiment_id = await stored_experiments.experiment_id_by_name(db, spec.name)
        assert experiment_id is not None
        while True:
            latest = await stored_experiments.latest_version(db, experiment_id)
            if latest is not None and latest["content_hash"] == content_hash:
                return ImportResult(
                    id=experiment_id, name=spec.name, version=latest["version"], created=False
                )
            version = 1 if latest is None else latest["version"] + 1
            stored = stored_experiments.version_statement(
                experiment_id,
                version,
                spec_yaml=loaded.text,
                spec_json=spec_json,
                content_hash=content_hash,
                source=loaded.origin or loaded.source,
                created_at=now_iso(),
            )
            await db.write([stored])
            if await stored_experiments.version_hash(db, experiment_id, version) == content_hash:
                return ImportResult(id=experiment_id, name=spec.name, version=version, created=True)

    async def list_experiments(self) -> list[ExperimentRecord]:
        rows = await stored_experiments.list_summaries(self._services.db)
        return [await self._record(row) for row in rows]

    async def get_experiment(self, ref: str, version: int | None = None) -> ExperimentDetail:
        db = self._services.db
        experiment_id = await resolve_experiment(db, ref)
        row = await stored_experiments.summary(db, experiment_id)
        assert row is not None
        wanted = version or row["version"]
        text = await stored_experiments.version_text(db, experiment_id, wanted)
        if text is None:
            raise NotFound(f"experiment {row['name']!r} has no version {wanted}")
        record = await self._record(row)
        return ExperimentDetail(
            **(record.model_dump() | {"version": wanted}),
            spec_yaml=text["spec_yaml"],
            spec=json.loads(text["spec_json"]),
            source_file=text["source"] if Path(text["source"]).is_absolute() else None,
        )

    async def duplicate_experiment(self, ref: str, new_name: str | None = None) -> ImportResult:
        """See `Workbench.duplicate_experiment`."""
        from ..engine.loader import LoadedExperiment  # here: reads skip the loader

        original = await self.get_experiment(ref)
        taken = await stored_experiments.experiment_names(self._services.db)
        name = new_name or _copy_name(original.name, taken)
        if name in taken:
            raise Conflict(f"an experiment named {name!r} exists already")
        text, renamed = _TOP_LEVEL_NAME.subn(f"name: {name}", original.spec_yaml, count=1)
        if not renamed:
            raise BadInput(f"cannot find the top-level `name:` line of {original.name!r}")
        # The stored spec has its dataset inlined, so a copy never re-reads a dataset file.
        try:
            spec = ExperimentSpec.model_validate(original.spec | {"name": name})
        except PydanticValidationError as exc:
            raise BadInput(f"invalid name {name!r}: {exc.errors()[0]['msg']}") from None
        source = f"copy of {original.name} v{original.version}"
        return await self.import_experiment(LoadedExperiment(spec=spec, text=text, source=source))

    async def delete_experiment(self, ref: str) -> str:
        """See `Workbench.delete_experiment`."""
        experiment = await self.get_experiment(ref)
        db = self._services.db
        live = self._services.live.runners
        active = [
            row["id"]
            for row in await stored_sweeps.list_summaries(db, experiment.id)
            if effective_status(row["status"], row["owner_pid"], live_status(live, row["id"]), row)
            in ACTIVE_STATES
        ]
        if active:
            raise Conflict(
                f"experiment {experiment.name!r} has a sweep in progress ({', '.join(active)}); "
                "stop it first"
            )
        await db.write([stored_experiments.delete_statement(experiment.id)])
        return experiment.name

    async def _record(self, row: Any) -> ExperimentRecord:
        """The record of a summary row; `best_score` is the leader's score on its leaderboard
        (every sweep of the latest version, DESIGN §5b)."""
        live_here = live_status(self._services.live.runners, row["sweep_id"])
        return ExperimentRecord(
            id=row["id"],
            name=row["name"],
            version=row["version"],
            description=row["description"] or "",
            created_at=row["created_at"],
            versions=row["versions"],
            latest_sweep_id=row["sweep_id"],
            latest_sweep_status=(
                effective_status(row["sweep_status"], row["owner_pid"], live_here, row)
                if row["sweep_status"]
                else None
            ),
            best_score=await self._rankings.best_score(row["id"]),
            runs=row["runs"],
            tokens=row["tokens"],
        )


def _copy_name(name: str, taken: set[str]) -> str:
    """`NAME-copy`, else `NAME-copy-2`, `NAME-copy-3`, ...: the first not taken."""
    candidate, number = f"{name}-copy", 1
    while candidate in taken:
        number += 1
        candidate = f"{name}-copy-{number}"
    return candidate
