"""A crowd slice: many clients of one transport on one Dask worker's event loop.

:class:`CrowdSlice` is a Dask actor placed by :mod:`rtplay.engine.crowd_pool` on one worker;
its ``async`` methods run on that worker's own event loop, so the clients are the very
adapters the playground runs, on the same core, unchanged. Each client draws its jitter from
its own RNG seeded ``seed + index``, so a crowd run is repeatable decision by decision.
Crowd clients have no client-side ``offline`` fault (server-side faults reach them). They
start at the ramp's pace with at most :data:`MAX_STARTING` first connects in flight
(:class:`StartGate`), so a crowd of thousands connects as fast as the server takes it.

The session pulls :meth:`CrowdSlice.drain` every :data:`SNAPSHOT_S`; :meth:`CrowdSlice.stop`
ends the clients and answers the slice's final delivery figures.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import resource
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from rtplay.clients import CLIENT_CLASSES, CLIENTS, Endpoints
from rtplay.clients.base import Client, Emit
from rtplay.clients.core import ReconnectingClient, run_guarded
from rtplay.clients.turns import NoticeTurns
from rtplay.engine.crowd_gc import GARBAGE_BUDGET_KB, HEAP_FREEZE, GcPauses
from rtplay.model.crowd import CrowdRecorder, final_figures
from rtplay.model.events import Connected, Disconnected, Event, Failed
from rtplay.model.retry_spec import parse_policy
from rtplay.runtime.process import raise_open_files_limit, resident_kb

log = logging.getLogger(__name__)

#: How often the session pulls a slice's snapshot: 5 Hz is smooth enough for a live pane and,
#: at 1,000 clients per worker, a few kilobytes per pull.
SNAPSHOT_S = 0.2

#: Clients a whole crowd starts per second at first, shared among its slices: the crowd's own
#: first connects are set-up, not the experiment, and a server handed 1,000 handshakes at once
#: times half of them out (however many workers hand them).
RAMP_PER_S = 500.0

#: First connections a slice has in flight at once. The crowd's set-up then goes as fast as
#: the server completes handshakes and never faster: 10,000 clients let loose at the ramp's
#: pace on a busy machine overflowed the server's accept queue (``net.core.somaxconn``, 4096
#: by default); a SYN dropped there is sent again 1 s, then 3 s later, past the handshake
#: timeout, and each handshake timed out is server work thrown away and one more retry. Fifty
#: per slice keep the server busy (a handshake costs it about a millisecond) and its queue short.
MAX_STARTING = 50

#: Client knobs a crowd's clients take unless the run sets them. A WebSocket crowd of 10,000
#: reconnecting at once queues at the server for longer than the pane client's 5 s handshake
#: timeout; a client that gives up throws away the server's work on its handshake and comes
#: back with the next wave. 20 s is Socket.IO's connect timeout (a browser's WebSocket has
#: none of its own).
CROWD_DEFAULTS: dict[str, dict[str, float]] = {"ws": {"open_timeout": 20.0}}

#: How long stopping may take: every client task is cancelled, then its sockets close.
STOP_TIMEOUT_S = 10.0

#: Connects since the heap was last settled, as a share of the slice, past which the slice
#: settles it again once every client is connected: CPython itself runs a full collection
#: once a quarter more objects have survived since the last, so settling at that growth costs
#: no more full passes than the collector would make, and makes them when no retry is due. A
#: client or two reconnecting on its own is not worth a pause.
RESETTLE_FRACTION = 0.25

#: File descriptors each client needs (its socket), plus slack for the process itself.
FDS_PER_CLIENT = 2


@dataclass(frozen=True)
class SliceConfig:
    """What one slice runs: ``count`` clients numbered from ``first``."""

    transport: str
    count: int
    first: int
    seed: int
    policy: str | None
    """A named retry policy (``exponential:full``…); None: the transport's default."""
    endpoints: Endpoints
    options: dict[str, float] = field(default_factory=dict)
    """Numeric client knobs (ping_interval…), as the pane's client has them."""
    ramp_per_s: float = RAMP_PER_S
    """This slice's share of :data:`RAMP_PER_S`."""


def process_figures(pauses: GcPauses) -> dict[str, float]:
    """This worker process's CPU seconds so far, resident memory (MB) now, collector pauses."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return {"cpu_s": round(usage.ru_utime + usage.ru_stime, 2), "rss_mb": round(resident_kb() / 1024, 1)} | pauses.figures()


class StartGate:
    """At most ``limit`` clients making their first connection at once (the crowd's set-up).

    A client holds a place from its first attempt until that attempt ends (open, refused or
    failed: :meth:`on_event` sees it); its later attempts, the run's reconnects, never wait here.
    """

    def __init__(self, limit: int = MAX_STARTING) -> None:
        self._places = asyncio.Semaphore(limit)
        self._holders: set[int] = set()

    async def enter(self, index: int) -> None:
        """Until client ``index`` may make its first attempt."""
        await self._places.acquire()
        self._holders.add(index)

    def on_event(self, index: int, event: Event) -> None:
        """Client ``index``'s event: the end of its first attempt gives its place back."""
        if index in self._holders and isinstance(event, Connected | Disconnected | Failed):
            self._holders.discard(index)
            self._places.release()


def make_clients(config: SliceConfig, emit_for: Callable[[int], Emit]) -> list[Client]:
    """The slice's clients, each with its own seeded RNG and the crowd's policy.

    Only a reconnecting client takes a policy, an RNG and quiet pings; a poll client polls on
    its fixed interval and takes none of them (a policy asked of it is an error).
    """
    reconnects = issubclass(CLIENT_CLASSES[config.transport], ReconnectingClient)
    if config.policy and not reconnects:
        raise ValueError(f"{config.transport} clients take no retry policy (got {config.policy!r})")
    spec = parse_policy(config.policy) if config.policy else None
    turns = NoticeTurns()  # one loop, many machines: a loss they all notice is taken in turns
    clients = []
    for i in range(config.count):
        options: dict[str, Any] = CROWD_DEFAULTS.get(config.transport, {}) | config.options
        if reconnects:
            options["rng"] = random.Random(config.seed + config.first + i)
            options["quiet_pings"] = True  # any frame proves life; a crowd measures no round trips
            options["notice_turns"] = turns
        if spec is not None:
            options["retry"] = spec
        clients.append(CLIENTS[config.transport](config.endpoints, emit_for(i), options))
    return clients


class CrowdSlice:
    """A Dask actor: ``config.count`` clients on the worker's loop, counted by a :class:`CrowdRecorder`."""

    def __init__(self, config: SliceConfig) -> None:
        # Runs in a worker thread (Dask creates actors there): nothing touches the loop here.
        self.config = config
        self.recorder = CrowdRecorder(config.count)
        self.clients: list[Client] = []
        self.tasks: list[asyncio.Task[None]] = []
        self.gate: StartGate | None = None
        self.gc = GcPauses()
        """This worker's collector pauses since the slice's clients were all in (the set-up's
        until then)."""
        self.settled = False
        """Whether the slice's heap has been settled (collected, then frozen) since it connected."""
        self.reconnects_since_settled = 0

    def _emit_for(self, index: int) -> Emit:
        def emit(event: Event) -> None:
            if self.gate is not None:
                self.gate.on_event(index, event)
            self.recorder.on_event(index, event)
            if isinstance(event, Connected):
                self._on_connected()

        return emit

    def _on_connected(self) -> None:
        """One more client connected: settle the heap when it was the last one out (see
        :mod:`rtplay.engine.crowd_gc`), the first time and after each wave large enough."""
        self.reconnects_since_settled += 1
        if self.recorder.open < self.config.count:
            return
        if self.settled and self.reconnects_since_settled < self.config.count * RESETTLE_FRACTION:
            return
        self._settle()
        if not self.settled:  # the crowd is in: from here on the pauses are the run's
            self.gc.restart()
        self.settled = True

    def _settle(self) -> None:
        HEAP_FREEZE.hold(self, resident_kb)
        self.reconnects_since_settled = 0

    def _check_garbage(self) -> None:
        """A crowd not all back for long: settle anyway once its garbage is over budget."""
        if HEAP_FREEZE.over_budget(resident_kb()):
            log.warning("crowd slice: grown over %.0f MB since the heap was last settled, with clients "
                        "still away; collecting now", GARBAGE_BUDGET_KB / 1024)
            self._settle()

    async def _run(self, index: int, client: Client, gate: StartGate) -> None:
        await asyncio.sleep(index / self.config.ramp_per_s)  # the ramp, then a place at the gate
        await gate.enter(index)
        await run_guarded(client)

    async def start(self) -> dict[str, Any]:
        """Start the clients (they ramp up at ``config.ramp_per_s``, at most :data:`MAX_STARTING`
        connecting at once); this process's figures."""
        self.gc.install()
        limit = raise_open_files_limit(self.config.count * FDS_PER_CLIENT + 256)
        if limit < self.config.count * FDS_PER_CLIENT:
            raise OSError(f"open-files limit {limit} is below the {self.config.count * FDS_PER_CLIENT} a slice needs")
        self.clients = make_clients(self.config, self._emit_for)
        self.gate = gate = StartGate()
        self.tasks = [
            asyncio.create_task(self._run(i, c, gate), name=f"crowd-{self.config.transport}-{i}")
            for i, c in enumerate(self.clients)
        ]
        return process_figures(self.gc)

    async def drain(self) -> dict[str, Any]:
        """What happened since the last drain, the lowest resume cursor, this process's figures."""
        cursor_min = min((c.cursor for c in self.clients), default=0)
        self._check_garbage()
        return {"delta": self.recorder.drain(), "cursor_min": cursor_min} | process_figures(self.gc)

    async def stop(self, published: int, replay_from: int) -> dict[str, Any]:
        """Stop the clients; the slice's delivery figures against ``published``.

        ``replay_from`` is the oldest seq the server can still replay: a client stopped while
        retrying with a cursor at or past it could still have had the rest (pending, not lost).
        """
        for task in self.tasks:
            task.cancel()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(STOP_TIMEOUT_S):
                await asyncio.gather(*self.tasks, return_exceptions=True)
        entries = [c.report(published, replay_from) for c in self.clients]
        policy = self.clients[0].retry.describe() if self.clients and hasattr(self.clients[0], "retry") else "-"
        last = {"delta": self.recorder.drain(), "cursor_min": min((c.cursor for c in self.clients), default=0)}
        figures = process_figures(self.gc)
        self.gc.remove()
        HEAP_FREEZE.release(self)
        return last | {"final": final_figures(entries, policy) | {"clients": len(self.clients)}} | figures
