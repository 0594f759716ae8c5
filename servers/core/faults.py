"""Server-side fault state. Pure: no I/O, time is passed in.

Endpoints ask it questions at the moment a fault would act for real — "should this request
fail, and with what?", "how long do I hold this message?", "is this transport stalled?" —
so a fault is applied where it would happen on a real network or server. The vocabulary
(kinds, scopes, units, validation) is shared with the clients: :mod:`rtplay.protocol.faults`.
"""

from __future__ import annotations

import random
from collections import deque
from dataclasses import dataclass, field

from rtplay.protocol.faults import ALL, ONE_SHOT, Fault, FaultError, Kind, validate, validate_duration, validate_on_own_server

MAX_ACTIVE_FAULTS = 64
"""Faults active at once. Every request consults them, so their number is bounded; 64 is
far beyond one per kind per transport that any experiment combines."""


@dataclass
class FaultState:
    """The active faults and the questions endpoints ask of them."""

    rng: random.Random = field(default_factory=random.Random)
    _faults: dict[int, Fault] = field(default_factory=dict)
    _next_id: int = 1
    version: int = 0
    """Bumped on every change, so watchers can tell the active set changed."""
    _ended: deque[Fault] = field(default_factory=lambda: deque(maxlen=256))

    def add(
        self,
        kind: Kind,
        scope: str = ALL,
        value: float | None = None,
        *,
        now: float,
        duration: float | None = None,
        jitter: float = 0.0,
    ) -> Fault:
        validate(kind, scope, value, jitter)
        validate_on_own_server(kind, scope)
        validate_duration(duration)
        if kind not in ONE_SHOT and len(self._faults) >= MAX_ACTIVE_FAULTS:
            raise FaultError(f"{MAX_ACTIVE_FAULTS} faults are active already: clear some first")
        if kind in (Kind.OUTAGE, Kind.CRASH) and duration is None:
            duration = value  # an outage of S seconds ends by itself
        fault = Fault(
            self._next_id, kind, scope, value, jitter, now, None if duration is None else now + duration
        )
        self._next_id += 1
        if kind not in ONE_SHOT:
            self._faults[fault.id] = fault
            self.version += 1
        return fault

    def clear(self, fault_id: int | None = None) -> list[Fault]:
        """Clear one fault (or all); return what was cleared."""
        if fault_id is None:
            cleared = list(self._faults.values())
            self._faults.clear()
        else:
            fault = self._faults.pop(fault_id, None)
            cleared = [fault] if fault else []
        if cleared:
            self.version += 1
        return cleared

    def expire(self, now: float) -> list[Fault]:
        """Remove faults whose time is up; return them."""
        done = [f for f in self._faults.values() if f.until is not None and now >= f.until]
        for fault in done:
            del self._faults[fault.id]
            self._ended.append(fault)
        if done:
            self.version += 1
        return done

    def drain_ended(self) -> list[Fault]:
        """Faults that expired since the last call (whoever noticed the expiry first)."""
        ended = list(self._ended)
        self._ended.clear()
        return ended

    def none_active(self) -> bool:
        """No fault acts on anything: what per-message paths ask first (no list, no sort)."""
        return not self._faults

    def active(self, now: float | None = None) -> list[Fault]:
        if now is not None:
            self.expire(now)
        return sorted(self._faults.values(), key=lambda f: f.id)

    def _first(self, kind: Kind, transport: str) -> Fault | None:
        for fault in self._faults.values():
            if fault.kind is kind and fault.applies_to(transport):
                return fault
        return None

    def has(self, kind: Kind, transport: str) -> bool:
        """Is a fault of ``kind`` acting on ``transport`` right now?"""
        return self._first(kind, transport) is not None

    def error_for(self, transport: str) -> int | None:
        """The status code new requests/handshakes of ``transport`` get, if any."""
        fault = self._first(Kind.ERROR, transport)
        return int(fault.value) if fault and fault.value is not None else None

    def delay_for(self, transport: str) -> float:
        """How long (s) to hold the next response/message of ``transport``; 0 for none."""
        fault = self._first(Kind.DELAY, transport)
        if fault is None or fault.value is None:
            return 0.0
        ms = fault.value + (self.rng.uniform(-fault.jitter, fault.jitter) if fault.jitter else 0.0)
        return max(0.0, ms) / 1000

    def stalled(self, transport: str) -> bool:
        return self._first(Kind.STALL, transport) is not None

    def offline(self, transport: str) -> bool:
        return self._first(Kind.OFFLINE, transport) is not None

    def throttle_for(self, transport: str) -> float | None:
        """Bandwidth cap in bytes/s for ``transport``, if any."""
        fault = self._first(Kind.THROTTLE, transport)
        return fault.value * 1000 if fault and fault.value else None

    def datagram_fate(self, transport: str) -> tuple[bool, bool, bool]:
        """(drop, reorder, duplicate) for one datagram of ``transport``, drawn at random."""
        def hit(kind: Kind) -> bool:
            fault = self._first(kind, transport)
            return bool(fault and fault.value and self.rng.random() * 100 < fault.value)

        return hit(Kind.LOSS), hit(Kind.REORDER), hit(Kind.DUPLICATE)
