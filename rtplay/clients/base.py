"""What every transport client shares: accounting, state, events, retry sleeps.

A client is a thin adapter: it moves bytes between its socket and this shared logic. It
calls :meth:`Client.on_envelope` for every envelope it receives and the ``_connecting`` /
``_connected`` / ``_disconnected`` / ``_retry_in`` / ``_failed`` hooks as its connection
changes; the base turns those into metrics and typed events.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from rtplay.model.accounting import View, is_recoverable
from rtplay.model.channels import ChannelStats, ConnectionStats
from rtplay.model.events import (
    Connected,
    Connecting,
    Disconnected,
    Event,
    Failed,
    MessageReceived,
    ResetReceived,
    RetryScheduled,
    State,
    state_of,
)
from rtplay.protocol.envelope import Received
from rtplay.protocol.faults import ALL
from rtplay.protocol.messages import PING, PONG
from rtplay.runtime.health import cut_as_too_slow

log = logging.getLogger(__name__)

MAIN = "main"
"""The channel name of single-channel transports."""

Emit = Callable[[Event], None]

ArrivalHook = Callable[[float, str, int, bool, float], None]
"""Called with (now, channel, seq, new, latency_ms) on every envelope received."""


def is_heartbeat(payload: object) -> bool:
    """A ping or pong: never counted as wire bytes on any transport (the rule every
    transport follows: wire bytes are what carries messages, not keep-alives)."""
    return isinstance(payload, dict) and (PONG in payload or PING in payload)


class Network:
    """The client side's own network per transport (the ``offline`` fault), decided on the
    client side: whoever runs the clients switches it, and a client held offline waits for the
    switch instead of asking every few milliseconds."""

    def __init__(self) -> None:
        self._down: frozenset[str] = frozenset()
        self._changed = asyncio.Event()

    def set_down(self, scopes: Iterable[str]) -> None:
        """The network is down for exactly these scopes (transport names, or ``all``)."""
        down = frozenset(scopes)
        if down != self._down:
            self._down = down
            changed, self._changed = self._changed, asyncio.Event()
            changed.set()  # wakes every waiter; they look again

    def is_down(self, transport: str) -> bool:
        return bool(self._down) and (ALL in self._down or transport in self._down)

    async def wait_up(self, transport: str) -> None:
        """Until ``transport``'s network is up (at once when it is)."""
        while self.is_down(transport):
            await self._changed.wait()


class OfflineError(OSError):
    """The client's own network is down (the ``offline`` fault)."""


def _wall_ms() -> float:
    return time.time() * 1000


def _unknown_published() -> int | None:
    return None


@dataclass(frozen=True)
class ClientHooks:
    """What a client needs of whoever runs it (a session, a crowd worker), all given at
    construction; every field has a default, so a client runs on its own too."""

    arrival: ArrivalHook | None = None
    """Called on every envelope (the session's recovery figures)."""
    audit: Callable[[dict[str, object]], None] | None = None
    """``--log-messages``: called with one record per arrival and per connection change."""
    network: Network | None = None
    """The client-side ``offline`` fault's switch (None: the network is always up)."""
    published_now: Callable[[], int | None] = _unknown_published
    """The hub's last seq (the session knows it): where an unreliable channel went down."""
    clock: Callable[[], float] = time.monotonic
    """Monotonic seconds: every "when" the client decides."""
    wall_ms: Callable[[], float] = _wall_ms
    """Epoch milliseconds: one-way latency against the envelope's ``t``."""


class Client:
    """Base of every transport client. Subclasses implement :meth:`run`."""

    name = "?"
    channels: tuple[str, ...] = (MAIN,)
    unreliable_channels: tuple[str, ...] = ()
    """Best-effort channels: losses counted from the first arrival, up or down."""

    def __init__(
        self, base_url: str, emit: Emit | None = None, *, emit_messages: bool = False, hooks: ClientHooks | None = None
    ) -> None:
        hooks = hooks or ClientHooks()
        self.base_url = base_url.rstrip("/")
        self._emit = emit or (lambda event: None)
        self._emit_messages = emit_messages
        self.stats = {
            channel: ChannelStats.unreliable() if channel in self.unreliable_channels else ChannelStats()
            for channel in self.channels
        }
        self.conn = ConnectionStats()
        self.state = State.CONNECTING
        self.state_detail = ""
        """Why the client is in its state (the failure reason, the retry policy…)."""
        self.retry_at: float | None = None
        """Monotonic time of the next attempt while retrying."""
        self.attempts = 0
        self.resume_cursor: int | None = None
        """The cursor the current attempt resumes from (its ``since``): a transport may deliver
        the replayed backlog before it reports the connection open (WebTransport's stream can
        beat the session's 200), so replay is measured from here, not from the cursor then."""
        self.cut_too_slow = 0
        """Disconnects where the server cut this client for reading too slowly (not a crash)."""
        self.subscribed_until: int | None = None
        """The hub's last seq when this client failed for good: later messages aren't its loss."""
        self.arrival_hook = hooks.arrival
        self.network = hooks.network or Network()
        self.audit = hooks.audit
        self._audit_bytes: dict[str, int] = {}
        self.published_now = hooks.published_now
        self.clock = hooks.clock
        self.wall_ms = hooks.wall_ms

    # --- what subclasses implement -------------------------------------------------------

    async def run(self) -> None:
        """Connect, receive, and retry per the transport's semantics until cancelled."""
        raise NotImplementedError

    @property
    def cursor(self) -> int:
        """The resume cursor: highest seq received on the resumable channel."""
        return self.stats[self.channels[0]].tracker.highest

    # --- the client-side network (offline fault) -------------------------------------------

    def is_offline(self) -> bool:
        """The client-side ``offline`` fault: this client's network is down."""
        return self.network.is_down(self.name)

    def check_online(self) -> None:
        """Before connecting: an offline client cannot reach anything."""
        if self.is_offline():
            raise OfflineError("network is down (offline fault)")

    async def wait_online(self) -> None:
        """Before reading: while offline, a live connection goes silent (nothing is read)."""
        await self.network.wait_up(self.name)

    # --- accounting --------------------------------------------------------------------

    def on_envelope(self, env: Received, received_ms: float, channel: str = MAIN) -> bool:
        """Account one received envelope; True when new."""
        now = self.clock()
        stats = self.stats[channel]
        new = stats.on_message(env.seq, env.t, received_ms, now)
        if self.audit is not None:
            self._record("msg", now, ch=channel, seq=env.seq, lat=received_ms - env.t,
                         b=self._audit_bytes.pop(channel, 0))
        if self.arrival_hook is not None:
            self.arrival_hook(now, channel, env.seq, new, received_ms - env.t)
        if self._emit_messages:
            latency = received_ms - env.t
            self._emit(MessageReceived(self.name, now, channel, env.seq, latency, new))
        return new

    def on_reset(self, first: int, channel: str = MAIN) -> None:
        now = self.clock()
        tracker = self.stats[channel].tracker
        if first - 1 < tracker.highest:  # a cursor ahead of the server's newest: start over there
            tracker.rewind(first)
        lost = tracker.reset(first)
        log.info("%s: reset, %d messages no longer available", self.name, lost)
        self._record("reset", now, ch=channel, first=first)
        self._emit(ResetReceived(self.name, now, channel, lost, first))

    def on_live(self, first: int, channel: str) -> None:
        """An unreliable channel's new session sends seqs from ``first`` on."""
        live = self.stats[channel].live
        assert live is not None, f"{channel} is not an unreliable channel"
        live.live_from(first)
        self._record("live", self.clock(), ch=channel, first=first)

    def add_wire_bytes(self, n: int, channel: str = MAIN) -> None:
        self.stats[channel].add_wire_bytes(n)
        if self.audit is not None:
            self._audit_bytes[channel] = self._audit_bytes.get(channel, 0) + n

    def _record(self, what: str, now: float, **fields: object) -> None:
        if self.audit is not None:
            self.audit({"ev": what, "tr": self.name, "at": now, "conn": self.conn.connects, **fields})

    def flush_audit(self) -> None:
        """Log the wire bytes not yet attached to an arrival (e.g. empty long-poll answers)."""
        for channel, n in sorted(self._audit_bytes.items()):
            self._record("bytes", self.clock(), ch=channel, b=n)
        self._audit_bytes.clear()

    # --- state changes -------------------------------------------------------------------

    def _send(self, event: Event, detail: str = "") -> None:
        state = state_of(event)
        if state is not None:
            self.state = state
            self.state_detail = detail
        self._emit(event)

    def _connecting(self) -> None:
        self.attempts += 1
        self.retry_at = None
        self.resume_cursor = self.cursor
        self._send(Connecting(self.name, self.clock(), self.attempts))

    def _connected(self, detail: str = "") -> None:
        now = self.clock()
        self.conn.on_connected(now)
        self._record("up", now, since=self.resume_cursor)
        self._send(Connected(self.name, now, detail), detail)

    def _went_down(self, now: float) -> None:
        self.conn.on_disconnected(now)
        self._record("down", now)
        for stats in self.stats.values():
            if stats.live is not None:
                stats.live.went_down(self.published_now())

    def _disconnected(self, reason: str) -> None:
        now = self.clock()
        self._went_down(now)
        log.info("%s: disconnected: %s", self.name, reason)
        self.cut_too_slow += cut_as_too_slow(reason)
        self._send(Disconnected(self.name, now, reason), reason)

    def _retry_in(self, delay: float, policy: str) -> None:
        now = self.clock()
        self.retry_at = now + delay
        self._record("retry", now)
        self._send(RetryScheduled(self.name, now, delay, policy), policy)

    def _failed(self, reason: str) -> None:
        now = self.clock()
        self._went_down(now)
        self.cut_too_slow += cut_as_too_slow(reason)
        self._record("failed", now)
        self._send(Failed(self.name, now, reason), reason)

    def stopped(self) -> None:
        self.state = State.STOPPED

    async def _wait_retry(self, delay: float, policy: str) -> None:
        self._retry_in(delay, policy)
        await asyncio.sleep(delay)

    # --- reporting -----------------------------------------------------------------------

    def start_from(self, seq: int) -> None:
        """Before :meth:`run`: start at the server's ``seq`` instead of its first message (an
        attaching session's clients owe nothing to, and should not replay, an earlier backlog)."""
        for stats in self.stats.values():
            stats.start_from(seq)

    def restart_counting(self) -> None:
        """Zero every counter (the user's reset); the connection and its cursor carry on."""
        now = self.clock()
        for stats in self.stats.values():
            stats.restart_counting()
        self.conn.restart_counting(now)
        self._audit_bytes.clear()
        self._record("restart", now)

    def view(self, published: int, replay_from: int, final: bool) -> View:
        """The context this client's figures are taken in (see :mod:`rtplay.model.accounting`)."""
        if self.subscribed_until is not None:
            published = min(published, self.subscribed_until)
        failed = self.state is State.FAILED
        recoverable = is_recoverable(failed, self.conn.connected, self.cursor, replay_from)
        return View(published, recoverable, final)

    def report(self, published: int, replay_from: int = 1, final: bool = False) -> dict[str, object]:
        """This client's entry of the JSON report.

        ``replay_from`` is the oldest seq the server can still replay; ``final`` says
        publishing stopped long enough ago for every tail to be settled.
        """
        now = self.clock()
        view = self.view(published, replay_from, final)
        base: dict[str, object] = {
            "state": self.state.value,
            "connects": self.conn.connects,
            "reconnects": self.conn.reconnects,
            "downtime_s": round(self.conn.downtime(now), 3),
            "cut_too_slow": self.cut_too_slow,
        }
        if self.state is State.FAILED:
            base["failed_reason"] = self.state_detail
        if self.channels == (MAIN,):
            return self.stats[MAIN].report(view, now) | base
        channels = {name: stats.report(view, now) for name, stats in self.stats.items()}
        primary = channels[self.channels[0]]
        return primary | base | {"channels": channels}
