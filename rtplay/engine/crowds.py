"""The session's crowds (``--clients N``): starting them, waiting for them, collecting them.

A :class:`CrowdSet` is owned by :class:`rtplay.engine.session.Session` and takes only what it
needs from it: the crowd settings, a way to ask the server's status (its load figures), the
clock, and the published count. It owns the Dask cluster the crowds run on.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from rtplay.clients import Endpoints
from rtplay.engine.control_client import ControlError
from rtplay.engine.crowd_cluster import CrowdCluster, local_workers
from rtplay.engine.crowd_pool import Crowd
from rtplay.engine.crowd_slice import FDS_PER_CLIENT
from rtplay.model.retry_spec import PolicySpec
from rtplay.runtime.process import raise_open_files_limit

log = logging.getLogger(__name__)

#: Longest load series asked of the server (its ``/control/status?load_s=`` bound).
LOAD_MAX_S = 3600.0

#: How long the crowds may go without one more client connected before publishing (and the
#: fault timeline) starts anyway: a thousand handshakes take about a second on loopback, and
#: 10,000 on a busy machine take a minute or more while they keep coming (their set-up is
#: paced to what the server completes, see crowd_slice.MAX_STARTING), so progress, not a
#: fixed time, says whether waiting is worth it.
CROWD_READY_S = 30.0

#: How often waiting for the crowds to connect looks at their merged states (their snapshots
#: arrive at 5 Hz; looking faster sees nothing new).
READY_CHECK_S = 0.1

#: ``GET /control/status``, with ``load_s`` seconds of the load series when not None.
StatusFn = Callable[[float | None], Awaitable[dict[str, Any]]]


@dataclass(frozen=True)
class CrowdSettings:
    """What the user asked of the crowds."""

    clients: int
    """Clients per transport (``--clients N``)."""
    transports: list[str]
    seed: int = 0
    cluster: str | None = None
    """A Dask scheduler's address (``--cluster tcp://HOST:8786``); None: a LocalCluster."""
    client_options: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Per-transport client options (the crowd takes the named policy and numeric knobs)."""
    workers: int | None = None
    """Worker processes of the LocalCluster (None: one per core, fewer for a small crowd)."""


class CrowdSet:
    """Every crowd of a session and the cluster they run on."""

    def __init__(
        self, settings: CrowdSettings, status: StatusFn, clock: Callable[[], float], published: Callable[[], int],
        replay_from: Callable[[], int],
    ) -> None:
        self.settings = settings
        self._status = status
        self._clock = clock
        self._published = published
        self._replay_from = replay_from
        self.crowds: dict[str, Crowd] = {}
        self.cluster: CrowdCluster | None = None
        self.server_kb_per_connection: float | None = None
        self.server_load: dict[str, Any] | None = None
        """The server's accepts/s, concurrent connections and loop lag over the run."""
        self._load_before: dict[str, Any] = {}

    async def start(self, endpoints: Endpoints) -> None:
        """Start the cluster, then a crowd per transport; the clients begin connecting."""
        total = self.settings.clients * len(self.settings.transports)
        # The LocalCluster's workers inherit this limit (each raises its own too: a user's workers).
        raise_open_files_limit(total * FDS_PER_CLIENT + 1024)
        self._load_before = (await self._status(None)).get("load", {})
        self.cluster = CrowdCluster(self.settings.cluster, self.settings.workers or local_workers(total))
        await self.cluster.start()
        for name in self.settings.transports:
            options = self.settings.client_options.get(name, {})
            policy = options.get("retry")
            numbers = {k: v for k, v in options.items() if isinstance(v, int | float) and not isinstance(v, bool)}
            # A named policy travels to the workers; a policy object (tests) cannot: the default then.
            named = str(policy) if isinstance(policy, PolicySpec | str) else None
            crowd = Crowd(name, self.settings.clients, named, self.cluster, self.settings.seed, numbers)
            self.crowds[name] = crowd
            await crowd.start(endpoints)

    async def ready(self) -> None:
        """Wait until every live crowd client is open (or none more for CROWD_READY_S), then note what the
        crowd's connections cost the server: its RSS growth per connection."""
        deadline, best = self._clock() + CROWD_READY_S, 0
        while not all(c.stats.states()["open"] >= c.clients - c.lost_clients for c in self.crowds.values()):
            if (now_open := sum(c.stats.states()["open"] for c in self.crowds.values())) > best:
                deadline, best = self._clock() + CROWD_READY_S, now_open
            if self._clock() > deadline:
                log.warning("crowds: %d clients connected and none more for %g s; starting anyway", best, CROWD_READY_S)
                break
            await asyncio.sleep(READY_CHECK_S)
        after = (await self._status(None)).get("load", {})
        grown = after.get("concurrent_now", 0) - self._load_before.get("concurrent_now", 0)
        kb = after.get("rss_kb", 0) - self._load_before.get("rss_kb", 0)
        self.server_kb_per_connection = kb / grown if grown > 0 else None

    def cursor_min(self) -> int | None:
        """The lowest resume cursor of any live crowd client (None without crowds)."""
        return min((c.cursor_min for c in self.crowds.values()), default=None)

    async def finish(self, started_at: float | None) -> None:
        """Stop the crowds, collect their delivery figures and the server's load series
        since ``started_at`` (before the report)."""
        for crowd in self.crowds.values():
            if crowd.final is None:
                await crowd.stop(self._published(), self._replay_from())
        if self.crowds and self.server_load is None:
            seconds = min(LOAD_MAX_S, self._clock() - (started_at or self._clock()) + 1)
            with contextlib.suppress(ControlError):
                self.server_load = (await self._status(seconds)).get("load")

    async def restart(self, name: str, policy: str, endpoints: Endpoints) -> None:
        """Replace ``name``'s crowd by a fresh one under ``policy`` (same size, seed, knobs)."""
        old = self.crowds[name]
        await old.stop(self._published(), self._replay_from())
        crowd = Crowd(name, old.clients, policy, old.cluster, old.seed, old.options)
        self.crowds[name] = crowd
        await crowd.start(endpoints)

    async def close(self) -> None:
        """Stop what still runs and close the cluster (safe to call twice)."""
        for crowd in self.crowds.values():
            if crowd.final is None and crowd.slices:
                await crowd.stop(self._published(), self._replay_from())
        if self.cluster is not None:
            await self.cluster.close()
            self.cluster = None

    def report_into(self, transports: dict[str, dict[str, Any]], since: float | None) -> dict[str, Any] | None:
        """Add each crowd's entry to its transport's; the report's ``server_load`` (None without crowds)."""
        for name, crowd in self.crowds.items():
            transports[name]["crowd"] = crowd.report(since=since)
        if not self.crowds:
            return None
        kb = self.server_kb_per_connection
        return dict(self.server_load or {}) | {"rss_kb_per_connection": None if kb is None else round(kb, 1)}
