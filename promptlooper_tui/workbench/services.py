"""What the Workbench's parts share: the store, the event bus, the call cache, secrets, the
endpoint pool, the webhook dispatcher, leaderboards, limits, who the callers are, and the
sweeps this process is running."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ..domain.errors import NotFound
from ..domain.trust import CallerPolicy
from ..engine.cache import CallCache
from ..engine.endpoints import EndpointPool, ResolvedEndpoint, api_key_from_env, stored_limits
from ..engine.event_relay import EventRelay
from ..engine.events import EventBus
from ..engine.leaderboard_cache import LeaderboardCache
from ..engine.limits import default_limits
from ..engine.process_identity import ProcessIdentity
from ..engine.webhooks import WebhookDispatcher
from ..engine.work_leases import WorkLeases
from ..keystore import SecretBox
from ..settings import Settings
from ..store import endpoints as stored_endpoints
from ..store.database import Database
from ..team_secret import StoreSecret

if TYPE_CHECKING:
    # Made by the operations that need them: reads load no templates, runner or guard.
    from ..engine.guard import CheckGuard
    from ..engine.run_recorder import SweepCounters
    from ..engine.sweep import SweepRunner


@dataclass
class LiveSweeps:
    """The sweeps running (or paused) in this process, by id, and what finished ones counted."""

    runners: dict[str, SweepRunner] = field(default_factory=dict)
    tasks: dict[str, asyncio.Task[str]] = field(default_factory=dict)
    #: Counters of sweeps this process ran, kept for their summaries.
    counters: dict[str, SweepCounters] = field(default_factory=dict)

    def running_here(self, sweep_id: str) -> bool:
        """Whether `sweep_id` is running in this process now (not paused)."""
        runner = self.runners.get(sweep_id)
        return runner is not None and runner.status == "running"


class Services:
    """Built once per Workbench; every part reads these attributes at call time, so a
    replaced one (a test's webhook dispatcher, a remote caller's policy) holds everywhere."""

    def __init__(
        self, settings: Settings, db: Database, policy: CallerPolicy | None = None
    ) -> None:
        self.settings = settings
        self.db = db
        #: Who this Workbench's callers are (DESIGN §9): the terminal's person, or remote.
        self.policy = policy or CallerPolicy.local()
        #: Who this process is to the others on the store (its claims, leases and events).
        self.identity = ProcessIdentity.new()
        self.bus = EventBus()
        self.cache = CallCache(db, self.identity)
        self.secrets = SecretBox(settings.secret_key_path)
        #: Every process on a shared store uses one secret (DESIGN §10).
        self.store_secret = StoreSecret(db, self.secrets)
        self.endpoints = EndpointPool(self._resolve_stored_endpoint)
        self.webhooks = WebhookDispatcher(db, self.bus, self.secrets)
        self.boards = LeaderboardCache(db)
        #: The bounds on experiment checks (DESIGN §9); `PROMPTLOOPER_LIMIT_*` change them.
        self.limits = default_limits()
        self.guard: CheckGuard | None = None
        self.live = LiveSweeps()
        #: Its leases on shared work: units claimed, sweeps coordinated.
        self.leases = WorkLeases(db, self.identity)
        #: The bus's events to and from the other processes on the store.
        self.relay = EventRelay(db, self.bus, self.identity.owner)
        #: Sweeps `close()` found live and stopped (id -> experiment name): the app's command
        #: prints how to resume them once the app has quit.
        self.stopped_on_close: dict[str, str] = {}

    async def _resolve_stored_endpoint(self, name: str) -> ResolvedEndpoint:
        """A stored endpoint, with its key decrypted (or read from its variable)."""
        row = await stored_endpoints.endpoint(self.db, name)
        if row is None:
            raise NotFound(
                f"no endpoint named {name!r}; add it with `promptlooper endpoints add {name} "
                "--base-url URL`, or use `simulated`"
            )
        if row["api_key_encrypted"] is not None:
            key = self.secrets.decrypt(row["api_key_encrypted"])
        else:
            key = api_key_from_env(row["api_key_env"], f"endpoint {name!r}")
        pricing = {model: tuple(price) for model, price in json.loads(row["pricing"]).items()}
        return ResolvedEndpoint(
            name=name,
            base_url=row["base_url"],
            api_key=key,
            pricing=pricing,  # type: ignore[arg-type]
            limits=stored_limits(row["max_response_mb"], row["deadline_s"], row["idle_timeout_s"]),
            rate_limit_wait=row["rate_limit_wait_s"],
        )
