"""Retry policies and heartbeat deadlines. Pure: randomness is injected, time is passed in.

A policy answers one question after each failed attempt: how long to wait before the next
one. The named policies (``--retry TRANSPORT=POLICY``, scenario ``retry = "..."``) are
parsed by :mod:`rtplay.model.retry_spec`; this module holds the policies themselves.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

#: What ``exponential`` jitter modes mean (AWS Architecture Blog, "Exponential Backoff And
#: Jitter", 2015): with ``t = min(cap, base * factor**n)``, none waits ``t``; full waits
#: ``U(0, t)``; equal waits ``t/2 + U(0, t/2)``; decorrelated waits ``min(cap, U(base, 3 * prev))``.
JITTERS = ("none", "full", "equal", "decorrelated")

#: Decorrelated jitter's growth: the next wait is drawn up to this many times the last one
#: (the constant in the AWS analysis).
DECORRELATED_GROWTH = 3.0


@dataclass(frozen=True, slots=True)
class Decision:
    """One retry decision, for panes and logs."""

    now: float
    """When it was made (monotonic seconds)."""
    delay: float
    """How long the client waits before its next attempt."""
    failures: int
    """Consecutive failed attempts so far, this one included."""
    policy: str
    """The policy's description at the time (e.g. ``exp full 1s×2≤30s``)."""


class Backoff:
    """A retry policy: how long to wait before the next attempt, and why."""

    def __init__(self) -> None:
        self.failures = 0
        self.last: Decision | None = None

    def delay_for(self, failures: int, hint: float | None) -> float:
        """The wait after the ``failures``-th consecutive failure (1-based)."""
        raise NotImplementedError

    def decide(self, now: float = 0.0, hint: float | None = None) -> Decision:
        """The next wait and why; each call counts one more failure.

        ``hint`` is what the server asked for, if anything (an event stream's ``retry:``);
        only the ``eventsource`` policy follows it.
        """
        self.failures += 1
        delay = self.delay_for(self.failures, hint)
        self.last = decision = Decision(now, delay, self.failures, self.describe())
        return decision

    def next_delay(self, now: float = 0.0, hint: float | None = None) -> float:
        """The wait (seconds) before the next attempt (:meth:`decide`'s delay)."""
        return self.decide(now, hint).delay

    def reset(self) -> None:
        """A connection succeeded: start over."""
        self.failures = 0

    def describe(self) -> str:
        """A short human description for panes and logs."""
        raise NotImplementedError


class FixedDelay(Backoff):
    """Always the same wait (the classic long-poll client waits 10 s after an error)."""

    def __init__(self, delay: float) -> None:
        super().__init__()
        self.delay = delay

    def delay_for(self, failures: int, hint: float | None) -> float:
        return self.delay

    def describe(self) -> str:
        return f"fixed {self.delay:g}s"


class Immediate(Backoff):
    """No wait at all: the naive client that retries in a tight loop."""

    def delay_for(self, failures: int, hint: float | None) -> float:
        return 0.0

    def describe(self) -> str:
        return "immediate"


#: Reconnection time until a stream sends ``retry:``. The spec leaves it to the user agent;
#: Chromium and Firefox both use about 3 s.
DEFAULT_RECONNECTION_S = 3.0


class EventSourceDelay(Backoff):
    """What a browser's EventSource does: wait the server's ``retry:`` time, else its default.

    WHATWG HTML §9.2.3 "reestablish the connection": wait the reconnection time (optionally
    more, which browsers don't), then try again; no growth, no jitter.
    """

    def __init__(self, default: float = DEFAULT_RECONNECTION_S) -> None:
        super().__init__()
        self.default = default
        self._from_server = False

    def delay_for(self, failures: int, hint: float | None) -> float:
        self._from_server = hint is not None
        return hint if hint is not None else self.default

    def describe(self) -> str:
        if self._from_server:
            return "eventsource, the stream's retry:"
        return f"eventsource, {self.default:g} s default"


class ExponentialBackoff(Backoff):
    """``initial * factor**n`` capped at ``maximum``, randomized by ±``jitter``.

    The defaults are Socket.IO's reconnection defaults (reconnectionDelay 1000 ms,
    reconnectionDelayMax 5000 ms, randomizationFactor 0.5), the most widely deployed
    WebSocket reconnect policy on the web: the ``socketio`` policy.
    """

    def __init__(
        self,
        initial: float = 1.0,
        maximum: float = 5.0,
        factor: float = 2.0,
        jitter: float = 0.5,
        rng: random.Random | None = None,
    ) -> None:
        super().__init__()
        self.initial, self.maximum, self.factor, self.jitter = initial, maximum, factor, jitter
        self.rng = rng or random.Random()

    def delay_for(self, failures: int, hint: float | None) -> float:
        base = min(self.maximum, self.initial * self.factor ** min(failures - 1, 64))
        if self.jitter:
            # Socket.IO's Backoff: base ± base*jitter, uniformly.
            base += (self.rng.random() * 2 - 1) * self.jitter * base
        return min(self.maximum, max(0.0, base))

    def describe(self) -> str:
        return f"exp {self.initial:g}s×{self.factor:g}≤{self.maximum:g}s ±{self.jitter:.0%}"


@dataclass(frozen=True, slots=True)
class ExponentialParams:
    """The knobs of ``exponential``: ``t = min(cap, base * factor**(failures-1))``."""

    jitter: str = "none"
    base: float = 1.0
    """The first wait, seconds (before jitter)."""
    cap: float = 30.0
    """No wait is longer (gRPC's and the AWS analysis's order of magnitude)."""
    factor: float = 2.0


class Exponential(Backoff):
    """Exponential backoff with one of the four jitter modes of :data:`JITTERS`."""

    def __init__(self, params: ExponentialParams = ExponentialParams(), rng: random.Random | None = None) -> None:
        super().__init__()
        self.params = params
        self.rng = rng or random.Random()
        self._prev = params.base
        self._description = f"exp {params.jitter} {params.base:g}s×{params.factor:g}≤{params.cap:g}s"
        """The params are frozen: described once, not on every decision of a crowd's wave."""

    def reset(self) -> None:
        super().reset()
        self._prev = self.params.base

    def delay_for(self, failures: int, hint: float | None) -> float:
        p = self.params
        ceiling = min(p.cap, p.base * p.factor ** min(failures - 1, 64))
        if p.jitter == "full":
            return self.rng.uniform(0.0, ceiling)
        if p.jitter == "equal":
            return ceiling / 2 + self.rng.uniform(0.0, ceiling / 2)
        if p.jitter == "decorrelated":
            self._prev = min(p.cap, self.rng.uniform(p.base, self._prev * DECORRELATED_GROWTH))
            return self._prev
        return ceiling

    def describe(self) -> str:
        return self._description


#: The app-level heartbeat of the ws, wt and rtc clients (one setting, so panes compare like
#: with like): ping every 2 s, and a peer silent 3 s after a ping is presumed dead. A stall
#: or a dead link then shows within 5 s — quick enough to watch in the playground — while
#: SCTP/QUIC retransmissions under heavy loss (p99 ~100 ms) never trip it. Production
#: stacks use more (Socket.IO: 25 s + 20 s); scenarios and clients can set their own.
DEFAULT_PING_INTERVAL_S = 2.0
DEFAULT_PING_TIMEOUT_S = 3.0


class Heartbeat:
    """When to send a ping and when silence means the peer is dead.

    Any inbound traffic counts as life. After a ping is sent, the peer has ``timeout``
    seconds to show life before :meth:`expired` says the connection is dead. With
    ``quiet_only`` a ping is due only after ``interval`` without traffic: a busy connection
    sends none (crowd clients, which measure no round trips); a dead one is still found
    within ``interval + timeout`` of its last sign of life.
    """

    def __init__(self, interval: float, timeout: float, now: float, quiet_only: bool = False) -> None:
        self.interval = interval
        self.timeout = timeout
        self.quiet_only = quiet_only
        self._last_heard = now
        self._ping_sent_at: float | None = None
        self._next_ping = now + interval

    def heard(self, now: float) -> None:
        """Something arrived from the peer."""
        self._last_heard = now
        self._ping_sent_at = None
        if self.quiet_only:
            self._next_ping = now + self.interval

    def ping_due(self, now: float) -> bool:
        return now >= self._next_ping

    def ping_sent(self, now: float) -> None:
        if self._ping_sent_at is None:
            self._ping_sent_at = now
        self._next_ping = now + self.interval

    def expired(self, now: float) -> bool:
        return self._ping_sent_at is not None and now - self._ping_sent_at >= self.timeout

    def next_deadline(self, now: float) -> float:
        """The next moment something must happen (a ping to send or a timeout to check)."""
        deadline = self._next_ping
        if self._ping_sent_at is not None:
            deadline = min(deadline, self._ping_sent_at + self.timeout)
        return max(deadline, now)
