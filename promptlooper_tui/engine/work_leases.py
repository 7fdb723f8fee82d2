"""This process's leases on shared work: the work units it has claimed and the sweeps it
coordinates, renewed together while it holds any, so that another process takes them over
only once this one has stopped renewing (it died, or its machine did).

One renewal write covers every unit and every coordination of the process (they are renewed by
owner), whatever the number of sweeps.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from ..domain.errors import StorageError
from ..store import work
from ..store.database import Database, Statement
from .process_identity import ProcessIdentity

log = logging.getLogger(__name__)

#: How long a claimed unit or a coordination stays this process's without renewal: what a
#: process that dies can hold up, and at most what is paid twice when its calls are redone.
LEASE_S = 15.0
#: How often the leases are renewed (a third of the lease: two renewals may fail in a row).
RENEW_EVERY_S = LEASE_S / 3


class WorkLeases:
    def __init__(self, db: Database, identity: ProcessIdentity) -> None:
        self._db = db
        self.identity = identity
        self._units = 0
        self._coordinating: set[str] = set()
        self._renewer: asyncio.Task[None] | None = None

    @property
    def owner(self) -> str:
        return self.identity.owner

    def expires(self) -> float:
        """When a lease taken or renewed now runs out."""
        return time.time() + LEASE_S

    def hold_units(self, count: int) -> None:
        self._units += count
        self._keep_renewing()

    def drop_units(self, count: int) -> None:
        self._units = max(0, self._units - count)

    async def coordinate(self, sweep_id: str) -> bool:
        """Take the coordination of `sweep_id` unless a live process holds it; True if this
        process has it now. A lease of a process of this host that is gone is taken at once."""
        db, me = self._db, self.identity
        holder = await work.coordinator(db, sweep_id)
        if (
            holder is not None
            and holder["owner"] != me.owner
            and holder["expires_at"] >= time.time()
            and not me.outlives(holder["host"], holder["pid"])
        ):
            await db.write([work.drop_coordinator_statement(sweep_id, holder["owner"])])
        taken = await work.take_coordination(
            db, sweep_id, me.owner, me.host, me.pid, now=time.time(), lease_s=LEASE_S
        )
        if taken:
            self._coordinating.add(sweep_id)
            self._keep_renewing()
        return taken

    def drop_coordination_statement(self, sweep_id: str) -> Statement:
        """The write that lets another process coordinate `sweep_id` at once."""
        self._coordinating.discard(sweep_id)
        return work.drop_coordinator_statement(sweep_id, self.owner)

    async def close(self) -> None:
        if self._renewer is not None:
            self._renewer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._renewer

    def _keep_renewing(self) -> None:
        if self._renewer is None or self._renewer.done():
            self._renewer = asyncio.create_task(self._renew(), name="work-leases")

    async def _renew(self) -> None:
        while self._units or self._coordinating:
            await asyncio.sleep(RENEW_EVERY_S)
            expires = self.expires()
            try:
                await self._db.write(
                    [
                        work.renew_units_statement(self.owner, expires),
                        work.renew_coordination_statement(self.owner, expires),
                    ]
                )
            except StorageError as exc:
                # Two more tries before the lease runs out; the writes that matter report it.
                log.warning("leases on shared work not renewed: %s", exc)
