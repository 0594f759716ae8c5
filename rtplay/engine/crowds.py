"""The session's crowds (``--clients N``): starting them, waiting for them, collecting them.

A mixin of :class:`rtplay.engine.session.Session`, kept apart because the crowds are a unit of
their own: lightweight worker clients per transport, plus the server load they cause.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from rtplay.clients import Endpoints
from rtplay.engine.control_client import ControlError
from rtplay.engine.crowd_pool import FDS_PER_CLIENT, Crowd, raise_fd_limit
from rtplay.model.retry_spec import PolicySpec

log = logging.getLogger(__name__)

#: Longest load series asked of the server (its ``/control/status?load_s=`` bound).
LOAD_MAX_S = 3600.0

#: How long a crowd may take to connect before publishing (and the fault timeline) starts:
#: a thousand handshakes take about a second on loopback; a slow machine gets thirty.
CROWD_READY_S = 30.0


class CrowdsMixin:
    """Crowd handling of :class:`~rtplay.engine.session.Session` (which provides ``config``,
    ``crowds``, ``clock``, ``control``, ``_api``, ``published`` and the load figures)."""

    async def _start_crowds(self, endpoints: Endpoints) -> None:
        """Start a crowd per transport (``--clients N``)."""
        raise_fd_limit(self.config.crowd * len(self.config.transports) * FDS_PER_CLIENT + 1024)
        self._load_before = (await self._api().status()).get("load", {})
        for name in self.config.transports:
            options = self.config.client_options.get(name, {})
            policy = options.get("retry")
            numbers = {k: v for k, v in options.items() if isinstance(v, int | float) and not isinstance(v, bool)}
            # A named policy travels to the workers; a policy object (tests) cannot: the default then.
            named = str(policy) if isinstance(policy, PolicySpec | str) else None
            crowd = Crowd(name, self.config.crowd, named, self.config.crowd_seed, numbers)
            self.crowds[name] = crowd
            await crowd.start(endpoints)

    async def _crowds_ready(self) -> None:
        """Wait until every crowd client is open (or CROWD_READY_S), then note what the
        crowd's connections cost the server: its RSS growth per connection."""
        deadline = self.clock() + CROWD_READY_S
        while not all(c.stats.states()["open"] >= c.clients for c in self.crowds.values()):
            if self.clock() > deadline:
                log.warning("crowds not all connected after %g s; starting anyway", CROWD_READY_S)
                break
            await asyncio.sleep(0.05)
        after = (await self._api().status()).get("load", {})
        grown = after.get("concurrent_now", 0) - self._load_before.get("concurrent_now", 0)
        kb = after.get("rss_kb", 0) - self._load_before.get("rss_kb", 0)
        self.server_kb_per_connection = kb / grown if grown > 0 else None

    async def finish_crowds(self) -> None:
        """Stop the crowds, collect their delivery figures and the server's load series
        over the run (before :meth:`report`)."""
        for crowd in self.crowds.values():
            if crowd.final is None:
                await crowd.stop(self.published)
        if self.crowds and self.control is not None and self.server_load is None:
            seconds = min(LOAD_MAX_S, self.clock() - (self.started_at or self.clock()) + 1)
            with contextlib.suppress(ControlError):
                self.server_load = (await self.control.status(load_s=seconds)).get("load")

    async def restart_crowd(self, name: str, policy: str) -> None:
        """Replace ``name``'s crowd by a fresh one under ``policy`` (same size, seed, knobs)."""
        old = self.crowds[name]
        await old.stop(self.published)
        crowd = Crowd(name, old.clients, policy, old.seed, old.options)
        self.crowds[name] = crowd
        await crowd.start(self.endpoints())
