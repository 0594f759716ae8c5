"""The fault vocabulary both sides speak: kinds, scopes, units, validation. Pure.

The server keeps the active faults (:mod:`servers.core.faults`); the session, the CLI, scenarios
and the playground name, describe and check faults with these same words.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
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

SERVER_WIDE = {Kind.OUTAGE, Kind.CRASH}
"""Faults that take rtplay's whole server down, every listener: no transport scope there (a
target run's proxies, one per transport, can take one transport down)."""

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

VALUE_RANGES: dict[str, tuple[float, float]] = {
    # A delay beyond a minute outlasts every client's timeout: it is an outage, say so.
    "ms": (0.0, 60_000.0),
    # An outage or crash holds EVERY listener down until it ends by itself; an hour is
    # longer than any demonstration needs and still ends.
    "s": (0.001, 3600.0),
    "%": (0.0, 100.0),
    # 1e-6 KB/s (a byte every 17 min) up to 1 GB/s, beyond which nothing is throttled.
    "KB/s": (1e-6, 1e6),
}
"""Inclusive range of each unit's value (``status`` is checked against :data:`ERROR_CODES`)."""

MAX_DURATION_S = 86_400.0
"""Longest a timed fault may last: a day. Longer is "until cleared" (no duration)."""


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

    @classmethod
    def from_json(cls, obj: dict[str, object], now: float) -> Fault:
        """A fault as :meth:`to_json` wrote it, its times moved onto the reader's clock ``now``;
        :class:`FaultError` when ``obj`` is not one."""
        try:
            value, remaining = _number(obj.get("value")), _number(obj.get("remaining_s"))
            fault_id = obj["id"]
            if isinstance(fault_id, bool) or not isinstance(fault_id, int):
                raise TypeError(f"id must be an integer, got {fault_id!r}")
            return cls(
                fault_id,
                Kind(obj["kind"]),
                str(obj["scope"]),
                value,
                _number(obj.get("jitter")) or 0.0,
                now - (_number(obj.get("age_s")) or 0.0),
                None if remaining is None else now + remaining,
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise FaultError(f"not a fault: {str(obj)[:80]!r} ({exc})") from None


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
    if not math.isfinite(value) or not math.isfinite(jitter):
        raise FaultError(f"{kind.value} needs a finite value in {unit}")
    if kind is Kind.ERROR:
        if value != int(value) or int(value) not in ERROR_CODES:
            raise FaultError(f"error code must be one of {sorted(ERROR_CODES)}, got {value:g}")
    else:
        low, high = VALUE_RANGES[unit]
        if value <= 0 < low:
            raise FaultError(f"{kind.value} must be > 0 {unit}")
        if not low <= value <= high:
            raise FaultError(f"{kind.value} must be {low:g}-{high:g}{unit}, got {value:g}")
    if jitter and kind is not Kind.DELAY:
        raise FaultError("only delay takes a ±jitter")
    if not 0 <= jitter <= VALUE_RANGES["ms"][1]:
        raise FaultError(f"jitter must be 0-{VALUE_RANGES['ms'][1]:g} ms")


def validate_on_own_server(kind: Kind, scope: str) -> None:
    """Raise :class:`FaultError` for a fault rtplay's own server cannot scope as asked."""
    if kind in SERVER_WIDE and scope != ALL:
        raise FaultError(f"{kind.value} takes every listener of the server down: its scope is all, not {scope}")


def validate_duration(duration: float | None) -> None:
    """Raise :class:`FaultError` unless ``duration`` is None or 0 < duration <= a day."""
    if duration is not None and not (math.isfinite(duration) and 0 < duration <= MAX_DURATION_S):
        raise FaultError(f"duration must be 0-{MAX_DURATION_S:g} s, got {duration:g}")


def _number(value: object) -> float | None:
    """A JSON number as a float (None stays None); TypeError for anything else."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"expected a number, got {value!r}")
    return float(value)
