"""Retry policies and heartbeat deadlines. Pure: randomness is injected, time is passed in."""

from __future__ import annotations

import random
from dataclasses import dataclass, field


class Backoff:
    """A retry policy: how long to wait before the next attempt, and why."""

    def next_delay(self) -> float:
        """The wait (seconds) before the next attempt; each call counts one more failure."""
        raise NotImplementedError

    def reset(self) -> None:
        """A connection succeeded: start over."""

    def describe(self) -> str:
        """A short human description for panes and logs."""
        raise NotImplementedError


@dataclass
class FixedDelay(Backoff):
    """Always the same wait (the classic long-poll client waits 10 s after an error)."""

    delay: float

    def next_delay(self) -> float:
        return self.delay

    def describe(self) -> str:
        return f"fixed {self.delay:g}s"


@dataclass
class ExponentialBackoff(Backoff):
    """``initial * factor**n`` capped at ``maximum``, randomized by ±``jitter``.

    The defaults are Socket.IO's reconnection defaults (reconnectionDelay 1000 ms,
    reconnectionDelayMax 5000 ms, randomizationFactor 0.5), the most widely deployed
    WebSocket reconnect policy on the web.
    """

    initial: float = 1.0
    maximum: float = 5.0
    factor: float = 2.0
    jitter: float = 0.5
    rng: random.Random = field(default_factory=random.Random, repr=False)
    attempts: int = 0

    def next_delay(self) -> float:
        base = min(self.maximum, self.initial * self.factor**self.attempts)
        self.attempts += 1
        if self.jitter:
            # Socket.IO's Backoff: base ± base*jitter, uniformly.
            base += (self.rng.random() * 2 - 1) * self.jitter * base
        return min(self.maximum, max(0.0, base))

    def reset(self) -> None:
        self.attempts = 0

    def describe(self) -> str:
        return f"exp {self.initial:g}s×{self.factor:g}≤{self.maximum:g}s ±{self.jitter:.0%}"


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
    seconds to show life before :meth:`expired` says the connection is dead.
    """

    def __init__(self, interval: float, timeout: float, now: float) -> None:
        self.interval = interval
        self.timeout = timeout
        self._last_heard = now
        self._ping_sent_at: float | None = None
        self._next_ping = now + interval

    def heard(self, now: float) -> None:
        """Something arrived from the peer."""
        self._last_heard = now
        self._ping_sent_at = None

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
