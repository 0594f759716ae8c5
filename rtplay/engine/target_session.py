"""A target-mode session: rtplay's clients on the user's endpoints, faults, a report.

There is no rtplay server to drive. By default each client reaches its target through its
own :class:`~rtplay.proxy.proxy.FaultProxy`, so the server-side faults (drop, stall, delay,
error, outage, throttle, and per SSE event / WebSocket message loss, duplicate, reorder) act
on a server rtplay does not control; ``offline`` stays the client's own. In direct mode
(``--direct``) the faults that apply are the client's own — ``drop`` (the client cuts its
connection, as a network reset would),
``outage=S`` (the client's network is down S seconds: the live connection is cut and
connects fail) and ``offline`` (the network is down for the fault's span: live connections
go silent). Faults that act on the server side (delay, stall, error, throttle, loss…) need
the proxy.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import math
import random
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from rtplay.clients.base import Client, ClientHooks, Emit, Network
from rtplay.clients.core import ReconnectingClient, run_guarded
from rtplay.clients.target import TargetTap
from rtplay.clients.target_clients import TARGET_CLIENTS, target_report
from rtplay.model.events import Event, Judged, State
from rtplay.model.faultspec import FaultSpec
from rtplay.model.identity import Identity
from rtplay.model.retry_spec import next_in_cycle
from rtplay.protocol.faults import ALL, Kind
from rtplay.proxy.proxy import FaultProxy

log = logging.getLogger(__name__)

#: The faults that act on the client's side, without a proxy.
CLIENT_SIDE = (Kind.DROP, Kind.OUTAGE, Kind.OFFLINE)

CLIENT_SIDE_NAMES = ", ".join(kind.value for kind in CLIENT_SIDE)


def client_side() -> tuple[Kind, ...]:
    """The faults that act on the client's side, without a proxy."""
    return CLIENT_SIDE

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
    crowd: int = 0
    """Lightweight clients per target besides the pane's own (``--clients N``), in this process."""
    crowd_seed: int = 0
    """Seed of the crowd clients' jitter (each client draws from its own seeded RNG)."""


#: Crowd clients per target in target mode: they run in this process (not on Dask workers)
#: and each holds a connection to the user's server; a few hundred is a crowd that a
#: development server can take, and more would measure this process, not the target.
MAX_TARGET_CROWD = 500


#: Faults the proxy cannot do (a crash loses a server's state: only the server can).
NOT_AT_PROXY = (Kind.CRASH,)


def check_crowd(crowd: int) -> None:
    """A target's crowd runs in this process: at most :data:`MAX_TARGET_CROWD` (TargetError)."""
    if crowd > MAX_TARGET_CROWD:
        raise TargetError(f"--clients {crowd}: in target mode a crowd runs in this process, at most "
                          f"{MAX_TARGET_CROWD} clients per target")


def check_faults(faults: list[FaultSpec], targets: dict[str, str], direct: bool = True) -> None:
    """Every fault must be one this mode can do and name a target transport (TargetError)."""
    for spec in faults:
        if not direct and spec.kind in NOT_AT_PROXY:
            raise TargetError(f"fault {spec}: a proxy cannot make the target lose its state; use outage")
        if direct and spec.kind not in CLIENT_SIDE:
            raise TargetError(
                f"fault {spec} acts on the server side: it needs rtplay's proxy between the clients and the "
                f"target; without it (--direct) only client-side faults apply: {CLIENT_SIDE_NAMES}"
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


def upstream_of(url: str) -> str:
    """The proxy's upstream for a target URL: its scheme (ws → http) and host:port."""
    parts = urlsplit(url)
    scheme = {"ws": "http", "wss": "https"}.get(parts.scheme, parts.scheme)
    return f"{scheme}://{parts.netloc}"


def proxied(url: str, proxy_url: str) -> str:
    """``url`` with its origin replaced by the proxy's (``ws://`` kept for a WebSocket)."""
    parts, proxy = urlsplit(url), urlsplit(proxy_url)
    scheme = "ws" if parts.scheme in ("ws", "wss") else "http"
    return parts._replace(scheme=scheme, netloc=proxy.netloc).geturl()


def proxy_text(spec: FaultSpec) -> str:
    """A fault as the proxy's grammar takes it: its kind and value (the timing is ours, and
    the whole proxy is the scope: it fronts one target)."""
    text = str(spec).split("@")[0]
    return f"{text}@{spec.start:g}s"


def crowd_figures(taps: list[TargetTap], clients: list[Client], now: float) -> dict[str, Any]:
    """A target's crowd in figures: states, totals (None where the identity cannot measure
    them) and how many of its reconnects the target answered each way."""
    states = Counter(client.state.value for client in clients)
    has_seq = taps[0].stats.has_seq
    trackers = [tap.stats.tracker for tap in taps]
    outcomes = Counter(verdict.outcome.value for tap in taps for _, verdict in tap.verdicts)
    return {
        "clients": len(clients),
        "states": dict(sorted(states.items())),
        "messages": sum(tap.stats.messages for tap in taps),
        "lost": sum(t.missing for t in trackers if t is not None) if has_seq else None,
        "duplicates": sum(t.duplicates for t in trackers if t is not None) if has_seq else None,
        "reconnects": sum(client.conn.reconnects for client in clients),
        "reconnect_outcomes": dict(sorted(outcomes.items())),
    }


@dataclass
class FaultRecord:
    """One applied fault and, per target, where its cursor was when it started."""

    spec: FaultSpec
    at: float
    cursors: dict[str, int | None]


class TargetSession:
    """Runs one client per target until stopped; applies client-side faults; reports."""

    def __init__(
        self, config: TargetConfig, emit: Emit | None = None, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.config = config
        self.clock = clock
        self._subscribers: list[Emit] = [emit] if emit is not None else []
        self.taps: dict[str, TargetTap] = {}
        self.clients: dict[str, Client] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._offline_until: dict[str, float] = {}
        self.network = Network()
        """The clients' own network: down per transport while its ``_offline_until`` lies ahead."""
        self._network_timer: asyncio.TimerHandle | None = None
        self.faults: list[FaultRecord] = []
        self.crowd_taps: dict[str, list[TargetTap]] = {}
        """Per target, its crowd clients' taps (``--clients N``)."""
        self.crowd_clients: dict[str, list[Client]] = {}
        self.crowds: dict[str, object] = {}
        """rtplay's Dask crowds (none here: a target's crowd runs in this process)."""
        self.proxies: dict[str, FaultProxy] = {}
        """Per target, the proxy its client goes through (none in direct mode)."""
        self.origin = clock()

    async def start(self) -> None:
        """A proxy per target (unless direct) and a client per target, connecting now; a
        half-started session stops what it started."""
        self.origin = self.clock()
        try:
            for transport, url in self.config.targets.items():
                await self._start_one(transport, url)
        except BaseException:
            await self.stop()
            raise

    async def _start_one(self, transport: str, url: str) -> None:
        connect_url = url
        if not self.config.direct:
            proxy = FaultProxy(f"target-{transport}", upstream_of(url))
            await proxy.start()
            self.proxies[transport] = proxy
            connect_url = proxied(url, proxy.url)
        tap, client = self._client(transport, connect_url, url, self.emit, None)
        tap.on_verdict = lambda verdict: self.emit(Judged(transport, self.clock(), verdict.words))
        self.taps[transport], self.clients[transport] = tap, client
        self._tasks.append(asyncio.create_task(run_guarded(client), name=f"target-{transport}"))
        crowd = [self._client(transport, connect_url, url, None, i) for i in range(self.config.crowd)]
        self.crowd_taps[transport] = [t for t, _ in crowd]
        self.crowd_clients[transport] = [c for _, c in crowd]
        for i, (_, member) in enumerate(crowd):
            self._tasks.append(asyncio.create_task(run_guarded(member), name=f"target-{transport}-crowd-{i}"))

    def _client(
        self, transport: str, connect_url: str, url: str, emit: Emit | None, member: int | None
    ) -> tuple[TargetTap, Client]:
        """A tap and a client for ``transport`` (``member``: its index in the crowd)."""
        identity = self.config.identities.get(transport, Identity())
        tap = TargetTap(transport, connect_url, identity, self.clock, shown_url=url)
        factory = TARGET_CLIENTS[transport]
        options = dict(self.config.client_options.get(transport, {}))
        if member is not None and isinstance(factory, type) and issubclass(factory, ReconnectingClient):
            options["rng"] = random.Random(self.config.crowd_seed * MAX_TARGET_CROWD + member)
        client = factory(tap, emit, hooks=ClientHooks(network=self.network, clock=self.clock), **options)
        return tap, client

    def subscribe(self, callback: Emit) -> None:
        """Call ``callback`` with every event of the clients (and the faults)."""
        self._subscribers.append(callback)

    def unsubscribe(self, callback: Emit) -> None:
        if callback in self._subscribers:
            self._subscribers.remove(callback)

    def emit(self, event: Event) -> None:
        for callback in list(self._subscribers):
            callback(event)

    def restart_client(self, transport: str) -> bool:
        """Start a failed client again (as a page reload would); False when it is not failed."""
        client = self.clients.get(transport)
        if client is None or client.state is not State.FAILED:
            return False
        self._tasks.append(asyncio.create_task(run_guarded(client), name=f"target-{transport}"))
        return True

    def cycle_policies(self, transports: list[str]) -> list[str]:
        """Move each target client to the next retry policy of the cycle; say what each uses."""
        said = []
        for name in transports:
            client = self.clients.get(name)
            if isinstance(client, ReconnectingClient):
                client.set_policy(next_in_cycle(str(client.retry_spec) if client.retry_spec else ""))
                said.append(f"{name}: {client.retry.describe()}")
        return said

    def reset_counters(self) -> None:
        """Zero every target's figures; connections and cursors carry on."""
        now = self.clock()
        for name, tap in self.taps.items():
            tap.restart_counting()
            self.clients[name].conn.restart_counting(now)
        self.faults.clear()

    def back_online(self, transport: str) -> None:
        """End the client-side ``offline`` fault of ``transport`` now."""
        self._offline_until.pop(transport, None)
        self._sync_network()

    def _sync_network(self) -> None:
        """Switch the clients' network to what ``_offline_until`` says now, and wake up again
        when the next of those spans ends (a timer, not a poll)."""
        now = self.clock()
        self.network.set_down(t for t, until in self._offline_until.items() if until > now)
        if self._network_timer is not None:
            self._network_timer.cancel()
            self._network_timer = None
        ends = [until for until in self._offline_until.values() if now < until < math.inf]
        if ends:
            self._network_timer = asyncio.get_running_loop().call_later(min(ends) - now, self._sync_network)

    def is_offline(self, transport: str) -> bool:
        """The client-side network of ``transport`` is down now."""
        return self.clock() < self._offline_until.get(transport, -math.inf)

    def duration(self) -> float:
        return self.clock() - self.origin

    def run_timeline(self, faults: list[FaultSpec]) -> None:
        """Apply ``faults`` at their start times (seconds from :meth:`start`), and end the
        proxy's at their end times."""
        actions: list[tuple[float, Callable[[], None]]] = []
        for spec in faults:
            actions.append((spec.start, functools.partial(self.apply, spec)))
            if spec.end is not None and spec.kind is not Kind.OFFLINE and not self.config.direct:
                actions.append((spec.end, functools.partial(self.end, spec)))
        actions.sort(key=lambda action: action[0])
        self._tasks.append(asyncio.create_task(self._timeline(actions)))

    async def _timeline(self, actions: list[tuple[float, Callable[[], None]]]) -> None:
        for at, action in actions:
            await asyncio.sleep(max(0.0, self.origin + at - self.clock()))
            action()

    def _scope(self, spec: FaultSpec) -> list[str]:
        return [t for t in self.taps if spec.scope in (ALL, t)]

    def apply(self, spec: FaultSpec) -> None:
        """Apply one fault now: at the proxies, or on the client side (offline; all in direct mode)."""
        now = self.clock()
        scope = self._scope(spec)
        self.faults.append(FaultRecord(spec, now, {t: self.taps[t].stats.cursor for t in scope}))
        side = "client" if self.config.direct or spec.kind is Kind.OFFLINE else "proxy"
        log.info("fault: %s on %s (%s side)", spec, ", ".join(scope), side)
        for transport in scope:
            if side == "proxy":
                self._at_proxy(transport, spec)
            elif spec.kind is Kind.OUTAGE:
                self._offline_until[transport] = now + (spec.value or 0.0)
            elif spec.kind is Kind.OFFLINE:
                end = math.inf if spec.end is None else self.origin + spec.end
                self._offline_until[transport] = end
            if side == "client" and spec.kind in (Kind.DROP, Kind.OUTAGE):
                for tap in [self.taps[transport], *self.crowd_taps.get(transport, [])]:
                    tap.cut()
        self._sync_network()

    def _at_proxy(self, transport: str, spec: FaultSpec) -> None:
        proxy = self.proxies[transport]
        toxic = proxy.add_fault(proxy_text(spec))
        if spec.kind is Kind.DROP:  # one-shot: it has cut every connection as it was added
            proxy.toxics.remove(toxic.name)

    def end(self, spec: FaultSpec) -> None:
        """A timed fault's end: off the proxies (an outage ends by itself)."""
        if self.config.direct or spec.kind is Kind.OFFLINE:
            return
        for transport in self._scope(spec):
            with contextlib.suppress(LookupError):
                self.proxies[transport].toxics.remove(proxy_text(spec))

    async def stop(self) -> None:
        if self._network_timer is not None:
            self._network_timer.cancel()
            self._network_timer = None
        """End every client, the timeline and the proxies."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        for client in self.clients.values():
            client.stopped()
        proxies, self.proxies = list(self.proxies.values()), {}
        for proxy in proxies:
            await proxy.stop()

    def report(self) -> dict[str, Any]:
        """The run's report: per target its figures, and per fault what each target did."""
        now = self.clock()
        transports = {t: target_report(client, self.taps[t]) for t, client in self.clients.items()}
        for transport, taps in self.crowd_taps.items():
            if taps:
                transports[transport]["crowd"] = crowd_figures(taps, self.crowd_clients[transport], now)
        return {
            "target": True,
            "mode": "direct" if self.config.direct else "proxy",
            "duration_s": round(now - self.origin, 3),
            "transports": transports,
            "faults": [self._fault_entry(i, record, now) for i, record in enumerate(self.faults)],
        }

    def _fault_entry(self, index: int, record: FaultRecord, now: float) -> dict[str, Any]:
        """What each target did from this fault until the next fault on it (or the end)."""
        side = "client" if self.config.direct or record.spec.kind is Kind.OFFLINE else "proxy"
        entry: dict[str, Any] = {"id": index + 1, "fault": str(record.spec), "at_s": round(record.at - self.origin, 3),
                                 "side": side, "transports": {}}
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
            entry["transports"][transport] = {"lost": lost, "did": did or ["no reconnect during the fault"]}
        return entry
