"""Server-side fault state. Pure: no I/O, time is passed in.

Endpoints ask it questions at the moment a fault would act for real — "should this request
fail, and with what?", "how long do I hold this message?", "is this transport stalled?" —
so a fault is applied where it would happen on a real network or server.
"""

from __future__ import annotations

import random
from collections import deque
from dataclasses import dataclass, field
from enum import Enum

TRANSPORTS = ("poll", "longpoll", "sse", "ws", "wt", "rtc")
"""Every transport rtplay knows, in the order panes and tables show them."""

ALL = "all"


class Kind(str, Enum):
    DROP = "drop"
    STALL = "stall"
    DELAY = "delay"
    ERROR = "error"
    OUTAGE = "outage"
    CRASH = "crash"
    LOSS = "loss"
    REORDER = "reorder"
    DUPLICATE = "duplicate"
    THROTTLE = "throttle"
    OFFLINE = "offline"


ONE_SHOT = {Kind.DROP}
"""Faults that act once and are never active."""

UDP_ONLY = {Kind.LOSS, Kind.REORDER, Kind.DUPLICATE}
"""Faults that act on datagrams: QUIC (wt) and WebRTC (rtc) only."""

VALUE_UNITS = {
    Kind.DELAY: "ms",
    Kind.ERROR: "status",
    Kind.OUTAGE: "s",
    Kind.CRASH: "s",
    Kind.LOSS: "%",
    Kind.REORDER: "%",
    Kind.DUPLICATE: "%",
    Kind.THROTTLE: "KB/s",
}
"""The unit of each fault's value; faults not listed take no value."""

ERROR_CODES = {204, 400, 403, 404, 429, 500, 502, 503, 504}
"""Status codes an ``error`` fault may answer with."""


class FaultError(ValueError):
    """A fault that makes no sense (unknown kind or scope, value out of range)."""


@dataclass(frozen=True, slots=True)
class Fault:
    id: int
    kind: Kind
    scope: str
    """A transport name or ``all``."""
    value: float | None
    """In :data:`VALUE_UNITS` of the kind; None for faults without a value."""
    jitter: float
    """± for delay (ms); 0 otherwise."""
    started: float
    """Monotonic start time (s)."""
    until: float | None
    """Monotonic end time, or None until cleared."""

    def applies_to(self, transport: str) -> bool:
        return self.scope in (ALL, transport)

    def describe(self) -> str:
        unit = VALUE_UNITS.get(self.kind, "")
        amount = ""
        if self.value is not None:
            amount = f" {self.value:g}{unit}" if unit != "status" else f" {int(self.value)}"
            if self.jitter:
                amount += f"±{self.jitter:g}"
        return f"{self.kind.value}{amount} on {self.scope}"

    def to_json(self, now: float) -> dict[str, object]:
        return {
            "id": self.id,
            "kind": self.kind.value,
            "scope": self.scope,
            "value": self.value,
            "jitter": self.jitter,
            "age_s": round(now - self.started, 3),
            "remaining_s": None if self.until is None else round(max(0.0, self.until - now), 3),
            "text": self.describe(),
        }


def validate(kind: Kind, scope: str, value: float | None, jitter: float = 0.0) -> None:
    """Raise :class:`FaultError` saying what is wrong with this fault, if anything."""
    if scope != ALL and scope not in TRANSPORTS:
        raise FaultError(f"unknown scope {scope!r}: expected all or one of {', '.join(TRANSPORTS)}")
    unit = VALUE_UNITS.get(kind)
    if unit is None:
        if value is not None:
            raise FaultError(f"{kind.value} takes no value")
        return
    if kind in UDP_ONLY and scope not in (ALL, "wt", "rtc"):
        raise FaultError(f"{kind.value} acts on datagrams: scope must be wt, rtc or all")
    if value is None:
        raise FaultError(f"{kind.value} needs a value in {unit}")
    if kind is Kind.ERROR and int(value) not in ERROR_CODES:
        raise FaultError(f"error code must be one of {sorted(ERROR_CODES)}")
    if unit == "%" and not 0 <= value <= 100:
        raise FaultError(f"{kind.value} must be 0-100%")
    if unit in ("ms", "s", "KB/s") and value <= 0 and kind is not Kind.DELAY:
        raise FaultError(f"{kind.value} must be > 0 {unit}")
    if value < 0 or jitter < 0:
        raise FaultError(f"{kind.value} must not be negative")
    if jitter and kind is not Kind.DELAY:
        raise FaultError("only delay takes a ±jitter")


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
