"""The playground's controls as pure logic: fault keys, fault amounts, publish rates.

Nothing here knows Textual; the main screen maps keys to these functions, and tests call
them directly.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from rtplay.protocol.faults import ALL, ONE_SHOT, VALUE_UNITS, Fault, Kind


@dataclass(frozen=True, slots=True)
class FaultKey:
    """The key that toggles a fault, and the key that cycles its amount (if it has one)."""

    kind: Kind
    key: str
    amount_key: str | None = None
    help: str = ""
    optional: bool = False
    """Shown on the fault keys' line only where it needs no extra row (the help lists it)."""


FAULT_KEYS: tuple[FaultKey, ...] = (
    FaultKey(Kind.DROP, "d", None, "close every live connection (one-shot)"),
    FaultKey(Kind.STALL, "s", None, "connections stay open but go silent"),
    FaultKey(Kind.DELAY, "l", "L", "hold every response and message"),
    FaultKey(Kind.ERROR, "e", "E", "new requests/handshakes get the status"),
    FaultKey(Kind.OUTAGE, "o", "O", "every listener down, hub state kept"),
    FaultKey(Kind.CRASH, "k", "K", "an outage that loses the replay buffer"),
    FaultKey(Kind.LOSS, "p", "P", "lose UDP datagrams (wt, rtc only)"),
    # u as in rtplay proxy's keys; r (its reorder) publishes faster here: j for jumble
    FaultKey(Kind.REORDER, "j", "J", "hold UDP datagrams back past the next (wt, rtc only)", optional=True),
    FaultKey(Kind.DUPLICATE, "u", "U", "send UDP datagrams twice (wt, rtc only)", optional=True),
    FaultKey(Kind.THROTTLE, "t", "T", "cap the bandwidth"),
    FaultKey(Kind.OFFLINE, "n", None, "the client's own network is down"),
)
"""Every fault the keyboard toggles, in the order the fault bar shows them."""

AMOUNTS: dict[Kind, tuple[float, ...]] = {
    Kind.DELAY: (100, 200, 500, 1000, 2000),
    Kind.ERROR: (503, 500, 204, 429),
    Kind.LOSS: (5, 10, 20, 50),
    Kind.REORDER: (5, 10, 20, 50),
    Kind.DUPLICATE: (5, 10, 20, 50),
    Kind.OUTAGE: (3, 5, 10),
    Kind.CRASH: (3, 5, 10),
    Kind.THROTTLE: (1, 5, 20),
}
"""The amounts each fault cycles through (in :data:`servers.core.faults.VALUE_UNITS`)."""

DEFAULT_AMOUNTS: dict[Kind, float] = {
    Kind.DELAY: 200,
    Kind.ERROR: 503,
    Kind.LOSS: 10,
    Kind.REORDER: 10,
    Kind.DUPLICATE: 10,
    Kind.OUTAGE: 5,
    Kind.CRASH: 5,
    Kind.THROTTLE: 5,
}

RATES: tuple[float, ...] = (1, 10, 100, 1000)
"""Publish rates (msg/s) the rate keys cycle through; 0 is pause."""

DEFAULT_RESUME_RATE = 10.0
"""The rate a resume goes back to when nothing was published before the pause."""


def format_amount(kind: Kind, value: float) -> str:
    """``200ms``, ``503``, ``10%``, ``5s``, ``5KB/s``."""
    unit = VALUE_UNITS.get(kind, "")
    return f"{int(value)}" if unit == "status" else f"{value:g}{unit}"


class Amounts:
    """The amount the next fault of each kind gets, and which kind +/- change (armed)."""

    def __init__(self) -> None:
        self._index = {kind: AMOUNTS[kind].index(value) for kind, value in DEFAULT_AMOUNTS.items()}
        self.armed: Kind = Kind.DELAY

    def value(self, kind: Kind) -> float | None:
        """The next fault's amount, or None for faults that take none."""
        if kind not in AMOUNTS:
            return None
        return AMOUNTS[kind][self._index[kind]]

    def arm(self, kind: Kind) -> None:
        """Make ``kind`` the fault whose amount +/- change (faults without one are ignored)."""
        if kind in AMOUNTS:
            self.armed = kind

    def cycle(self, kind: Kind, step: int = 1) -> float:
        """Move ``kind`` to its next (or previous) amount, wrapping; arm it; return it."""
        if kind not in AMOUNTS:
            raise ValueError(f"{kind.value} takes no amount")
        self._index[kind] = (self._index[kind] + step) % len(AMOUNTS[kind])
        self.armed = kind
        return AMOUNTS[kind][self._index[kind]]

    def set(self, kind: Kind, value: float) -> None:
        """Set ``kind``'s amount to one of its :data:`AMOUNTS`."""
        self._index[kind] = AMOUNTS[kind].index(value)
        self.armed = kind

    def label(self, kind: Kind) -> str:
        value = self.value(kind)
        return "" if value is None else format_amount(kind, value)


def next_rate(current: float, step: int) -> float:
    """The next publish rate up (``step`` > 0) or down from ``current``; at either end of
    :data:`RATES` (or beyond it) the rate stays where it is: no wrap from fastest to slowest."""
    if step > 0:
        return next((r for r in RATES if r > current), current)
    return next((r for r in reversed(RATES) if r < current), current)


class FaultTarget(Protocol):
    """What toggling needs of the session's fault controller (``rtplay.engine.faults``)."""

    async def add(self, kind: Kind, scope: str = ALL, value: float | None = None) -> Fault: ...

    async def clear(self, fault_id: int | None = None) -> list[Fault]: ...

    def active(self) -> list[Fault]: ...


async def toggle_fault(faults: FaultTarget, kind: Kind, scope: str, value: float | None) -> str:
    """Clear ``kind`` on ``scope`` if it is active there, else start it; say what happened.

    ``drop`` is one-shot, so it always starts. Raises ``ValueError`` (``FaultError``) with
    the reason when the fault makes no sense, e.g. ``loss`` on ``sse``.
    """
    if kind not in ONE_SHOT:
        same = [f for f in faults.active() if f.kind is kind and f.scope == scope]
        if same:
            for fault in same:
                await faults.clear(fault.id)
            return "cleared " + ", ".join(f.describe() for f in same)
    fault = await faults.add(kind, scope, value if kind in VALUE_UNITS else None)
    return "started " + fault.describe()
