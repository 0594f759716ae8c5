"""A target-mode session: rtplay's clients on the user's endpoints, client-side faults, a report.

There is no rtplay server to drive: in direct mode (``--direct``) the faults that apply are
the client's own — ``drop`` (the client cuts its connection, as a network reset would),
``outage=S`` (the client's network is down S seconds: the live connection is cut and
connects fail) and ``offline`` (the network is down for the fault's span: live connections
go silent). Faults that act on the server side (delay, stall, error, throttle, loss…) need
rtplay's proxy between the clients and the target.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from rtplay.clients.base import Client, Emit
from rtplay.clients.core import run_guarded
from rtplay.clients.target import TargetTap
from rtplay.clients.target_clients import TARGET_CLIENTS
from rtplay.model.faultspec import FaultSpec
from rtplay.model.identity import Identity
from rtplay.protocol.faults import ALL, Kind

log = logging.getLogger(__name__)

#: The faults that act on the client's side, without a proxy.
CLIENT_SIDE = (Kind.DROP, Kind.OUTAGE, Kind.OFFLINE)

#: How long the check before a run waits for a target's TCP handshake.
REACH_TIMEOUT_S = 2.0


class TargetError(ValueError):
    """A target run that cannot happen as asked (a fault needing the proxy, a target down)."""


@dataclass
class TargetConfig:
    """What a target session runs."""

    targets: dict[str, str]
    """transport → the user's URL."""
    identities: dict[str, Identity] = field(default_factory=dict)
    client_options: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Per transport, the client's options (``retry`` …)."""
    direct: bool = True


def check_faults(faults: list[FaultSpec], targets: dict[str, str]) -> None:
    """Every fault must act on the client side and name a target transport (TargetError)."""
    for spec in faults:
        if spec.kind not in CLIENT_SIDE:
            raise TargetError(
                f"fault {spec} acts on the server side: it needs rtplay's proxy between the clients and the "
                f"target; without it (--direct) only client-side faults apply: {', '.join(k.value for k in CLIENT_SIDE)}"
            )
        if spec.scope != ALL and spec.scope not in targets:
            raise TargetError(f"fault {spec}: no target for {spec.scope} (targets: {', '.join(targets)})")


async def unreachable(targets: dict[str, str]) -> list[str]:
    """The targets whose host does not accept a TCP connection, each with why."""
    problems = []
    for transport, url in targets.items():
        parts = urlsplit(url)
        default = 443 if parts.scheme in ("https", "wss") else 80
        try:
            async with asyncio.timeout(REACH_TIMEOUT_S):
                _, writer = await asyncio.open_connection(parts.hostname, parts.port or default)
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
        except (OSError, TimeoutError) as exc:
            why = "no answer" if isinstance(exc, TimeoutError) else (exc.strerror or str(exc)).lower()
            problems.append(f"{transport} target {url} is down: {why}")
    return problems


@dataclass
class FaultRecord:
    """One applied fault and, per target, where its cursor was when it started."""

    spec: FaultSpec
    at: float
    cursors: dict[str, int | None]


class TargetSession:
    """Runs one client per target until stopped; applies client-side faults; reports."""

    def __init__(self, config: TargetConfig, emit: Emit | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        self.config = config
        self.clock = clock
        self.emit = emit
        self.taps: dict[str, TargetTap] = {}
        self.clients: dict[str, Client] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._offline_until: dict[str, float] = {}
        self.faults: list[FaultRecord] = []
        self.origin = clock()

    async def start(self) -> None:
        """A client per target, connecting now."""
        self.origin = self.clock()
        for transport, url in self.config.targets.items():
            identity = self.config.identities.get(transport, Identity())
            tap = TargetTap(transport, url, identity, self.clock)
            client = TARGET_CLIENTS[transport](tap, self.emit, **self.config.client_options.get(transport, {}))
            client.clock = self.clock
            client.is_offline = lambda t=transport: self.is_offline(t)
            self.taps[transport], self.clients[transport] = tap, client
            self._tasks.append(asyncio.create_task(run_guarded(client), name=f"target-{transport}"))

    def is_offline(self, transport: str) -> bool:
        """The client-side network of ``transport`` is down now."""
        return self.clock() < self._offline_until.get(transport, -math.inf)

    def duration(self) -> float:
        return self.clock() - self.origin

    def run_timeline(self, faults: list[FaultSpec]) -> None:
        """Apply ``faults`` at their start times (seconds from :meth:`start`)."""
        self._tasks.append(asyncio.create_task(self._timeline(sorted(faults, key=lambda s: s.start))))

    async def _timeline(self, faults: list[FaultSpec]) -> None:
        for spec in faults:
            await asyncio.sleep(max(0.0, self.origin + spec.start - self.clock()))
            self.apply(spec)

    def apply(self, spec: FaultSpec) -> None:
        """Apply one client-side fault now."""
        now = self.clock()
        scope = [t for t in self.taps if spec.scope in (ALL, t)]
        self.faults.append(FaultRecord(spec, now, {t: self.taps[t].stats.cursor for t in scope}))
        log.info("fault: %s on %s (client side)", spec, ", ".join(scope))
        for transport in scope:
            if spec.kind is Kind.OUTAGE:
                self._offline_until[transport] = now + (spec.value or 0.0)
            elif spec.kind is Kind.OFFLINE:
                end = math.inf if spec.end is None else self.origin + spec.end
                self._offline_until[transport] = end
            if spec.kind in (Kind.DROP, Kind.OUTAGE):
                self.taps[transport].cut()

    async def stop(self) -> None:
        """End every client and the timeline."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        for client in self.clients.values():
            client.stopped()

    def report(self) -> dict[str, Any]:
        """The run's report: per target its figures, and per fault what each target did."""
        now = self.clock()
        transports = {t: client.report() for t, client in self.clients.items()}
        return {
            "target": True,
            "mode": "direct" if self.config.direct else "proxy",
            "duration_s": round(now - self.origin, 3),
            "transports": transports,
            "faults": [self._fault_entry(i, record, now) for i, record in enumerate(self.faults)],
        }

    def _fault_entry(self, index: int, record: FaultRecord, now: float) -> dict[str, Any]:
        """What each target did from this fault until the next fault on it (or the end)."""
        entry: dict[str, Any] = {"id": index + 1, "fault": str(record.spec), "at_s": round(record.at - self.origin, 3),
                                 "side": "client", "transports": {}}
        for transport, cursor in record.cursors.items():
            later = [r for r in self.faults[index + 1:] if transport in r.cursors]
            until = later[0].at if later else now
            until_cursor = later[0].cursors[transport] if later else self.taps[transport].stats.cursor
            tap = self.taps[transport]
            lost = None
            if cursor is not None and until_cursor is not None:
                lost = tap.stats.lost_between(cursor + 1, until_cursor)
            elif not tap.stats.has_seq:
                lost = None
            did = [v.words for at, v in tap.verdicts if record.at <= at < until]
            entry["transports"][transport] = {"lost": lost, "did": did or ["no reconnect judged"]}
        return entry
