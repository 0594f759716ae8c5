"""Fan-out of published envelopes to live connections, each with a bounded queue.

A connection that falls more than :data:`DEFAULT_SUBSCRIBER_QUEUE` envelopes behind is not
allowed to grow memory without bound: its subscription is closed with a stated reason and
the endpoint disconnects it. The client then resumes from its cursor like after any drop.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable

from rtplay.protocol.envelope import Envelope
from rtplay.runtime.health import SLOW_CONSUMER, DelayMeter
from rtplay.runtime.memory import oversized
from servers.core.hub import Backlog, Hub

log = logging.getLogger(__name__)

#: Envelopes a single connection may have queued before it counts as too slow. 4096 is
#: about 4 s at 1000 msg/s: long enough to ride out a GC pause or a slow terminal, short
#: enough that a stuck consumer costs at most a few hundred KiB.
DEFAULT_SUBSCRIBER_QUEUE = 4096

Sink = Callable[[Envelope], bool]
"""Writes an envelope to the connection at once if it can (True), else declines (False)."""


class Subscription:
    """One connection's view of the stream: a bounded queue plus a closed flag with a reason.

    While its consumer waits in :meth:`get` with nothing queued, it may lend a :data:`Sink`:
    a published envelope then goes straight to the connection from the publisher, with no
    task woken and no timer armed for it (at 10,000 subscribers, a wake-up per subscriber per
    message was the whole server's time). The sink declines when the envelope needs the
    consumer's care (a fault shapes the stream, the peer is behind): it is queued as before.
    """

    __slots__ = ("_items", "_maxsize", "_ready", "_sink", "closed", "reason", "direct")

    def __init__(self, maxsize: int) -> None:
        self._items: deque[Envelope] = deque()
        self._maxsize = maxsize
        self._ready = asyncio.Event()
        """Set while something is queued or the subscription is closed."""
        self._sink: Sink | None = None
        self.closed = asyncio.Event()
        self.reason = ""
        self.direct = 0
        """Envelopes a sink wrote so far (straight from the publisher)."""

    def offer(self, envelope: Envelope) -> bool:
        """Write ``envelope`` through the sink, or queue it; False when the queue is full (the
        consumer is too slow). Nothing queued is ever overtaken: the sink is used only while
        the queue is empty."""
        if self._sink is not None and not self._items and self._sink(envelope):
            self.direct += 1
            return True
        if len(self._items) >= self._maxsize:
            return False
        self._items.append(envelope)
        self._ready.set()
        return True

    def close(self, reason: str) -> None:
        if not self.closed.is_set():
            self.reason = reason
            self.closed.set()
            self._ready.set()

    async def get(self, timeout: float | None = None, sink: Sink | None = None) -> Envelope | None:
        """The next envelope; None on timeout or once closed (check :attr:`closed`).

        ``sink`` is lent for the wait only: once this returns, the consumer writes again
        itself, and nothing may be written past it."""
        while not self._items or self.closed.is_set():
            if self.closed.is_set():
                return None
            self._ready.clear()
            self._sink = sink
            try:
                async with asyncio.timeout(timeout):
                    await self._ready.wait()
            except TimeoutError:
                return None
            finally:
                self._sink = None
        return self._items.popleft()

    def drain(self, limit: int) -> list[Envelope]:
        """Up to ``limit`` more envelopes already queued, without waiting (for batched writes)."""
        count = min(limit, len(self._items))
        return [self._items.popleft() for _ in range(count)]


class Broadcaster:
    """Owns the hub on the async side: publishes and fans out (to subscriptions, then to the
    listeners: a WebRTC peer, the held long-polls)."""

    def __init__(self, hub: Hub, queue_size: int = DEFAULT_SUBSCRIBER_QUEUE) -> None:
        self.hub = hub
        self._queue_size = queue_size
        self._subscribers: set[Subscription] = set()
        self._listeners: list[Callable[[Envelope], None]] = []
        self.slow_cuts = 0
        """Subscriptions closed so far because their consumer was too slow."""

    def publish(self, now_ms: float | None = None) -> Envelope:
        """Publish one envelope to the hub and every live subscription."""
        envelope = self.hub.publish(time.time() * 1000 if now_ms is None else now_ms)
        for sub in self._subscribers:
            if sub.closed.is_set():
                continue
            if not sub.offer(envelope):
                log.info("closing a subscription: %s", SLOW_CONSUMER)
                sub.close(SLOW_CONSUMER)
                self.slow_cuts += 1
        for listener in self._listeners:
            listener(envelope)
        return envelope

    def add_listener(self, listener: Callable[[Envelope], None]) -> None:
        """Call ``listener`` synchronously with every published envelope (e.g. a WebRTC peer)."""
        self._listeners.append(listener)

    def remove_listener(self, listener: Callable[[Envelope], None]) -> None:
        """Stop calling ``listener`` (nothing if it was not added)."""
        if listener in self._listeners:
            self._listeners.remove(listener)

    def subscribe(self, cursor: int) -> tuple[Subscription, Backlog]:
        """Subscribe, then read the backlog after ``cursor``; the two never overlap or gap."""
        sub = Subscription(self._queue_size)
        self._subscribers.add(sub)
        # Synchronous: no publish can run between adding the subscriber and reading the backlog.
        return sub, self.hub.since(cursor)

    def unsubscribe(self, sub: Subscription) -> None:
        self._subscribers.discard(sub)
        if oversized(self._subscribers):  # a burst of subscribers has left: drop its table
            self._subscribers = set(self._subscribers)

    @property
    def subscriber_count(self) -> int:
        return len(self._subscribers)


class Publisher:
    """Publishes at ``rate`` messages per second on a fixed schedule (0 = paused).

    The schedule is absolute (``next += 1/rate``) so the long-run rate is exact even though
    each sleep wakes a little late; messages that came due during a late wake-up are sent
    in one burst, each stamped with its own send time.
    """

    #: Longest burst published in one wake-up; bounds the work of one event-loop step.
    MAX_BURST = 1000

    #: A dense schedule (messages less than this apart) is published a tick at a time: the
    #: messages due within this long of a wake-up go out in it, each stamped with its own
    #: send time, so the publisher wakes at most ~250 times a second whatever the rate. A
    #: wake-up costs 50-90 µs of CPU on a small VM (timer, epoll, the loop's turn), in both
    #: processes: at 1000 msg/s, one per message was most of the server's CPU; four messages
    #: per wake-up, and one write and one read per burst on every stream, cost a fraction.
    #: No message goes out late for it (at most this much early, which no figure counts:
    #: latency runs from the stamp); sparser schedules keep every message on its own time.
    PUBLISH_TICK_S = 0.004

    #: Messages of a sparse schedule due within this long are published now. uvloop's
    #: ``loop.time()`` moves in 1 ms steps and rounds timers to them, so a wake-up aimed between
    #: two steps fires "early" again and again until the clock ticks over: without this slack
    #: the publisher spins.
    CLOCK_SLACK_S = 0.001

    def __init__(self, broadcaster: Broadcaster, rate: float, slip: DelayMeter | None = None) -> None:
        self.broadcaster = broadcaster
        self._rate = rate
        self.slip = slip or DelayMeter()
        """How late, in ms, each wake-up published its first due message."""
        self.wakeups = 0
        """Times the schedule woke up: about one per message at most, or it is spinning."""
        self._changed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @property
    def rate(self) -> float:
        return self._rate

    def set_rate(self, rate: float) -> None:
        if rate < 0:
            raise ValueError("rate must be >= 0")
        self._rate = rate
        self._changed.set()

    def start(self) -> None:
        """Start publishing; the schedule counts from this call, even if the task starts late."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(asyncio.get_running_loop().time()), name="rtplay-publisher")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            # asyncio.wait, not ``await task`` in a try: a cancellation of *this* call must
            # propagate, not be mistaken for the task's own and swallowed.
            await asyncio.wait([self._task])
            self._task = None

    async def _run(self, next_at: float) -> None:
        loop = asyncio.get_running_loop()
        while True:
            self._changed.clear()
            if self._rate <= 0:
                await self._changed.wait()
                next_at = loop.time()
                continue
            now = loop.time()
            self.wakeups += 1
            if next_at <= now:
                self.slip.record((now - next_at) * 1000, now)
            sent = 0
            slack = self.PUBLISH_TICK_S if self._rate * self.PUBLISH_TICK_S > 1 else self.CLOCK_SLACK_S
            while next_at <= now + slack and sent < self.MAX_BURST:
                self.broadcaster.publish()
                next_at += 1.0 / self._rate
                sent += 1
            if next_at < now - 1.0:  # hopelessly behind (e.g. the loop was blocked): catch up
                next_at = now
            try:
                # asyncio.timeout, unlike wait_for, spawns no task per tick (1000+ a second).
                async with asyncio.timeout_at(next_at):
                    await self._changed.wait()
                next_at = loop.time()  # rate changed: restart the schedule from now
            except TimeoutError:
                pass
