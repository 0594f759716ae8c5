"""What the screens show, as plain frozen data: no Textual, no session, no clock.

A :class:`Dashboard` is one frame of the playground. The live backend builds one from the
session ~10 times a second; tests and snapshots build one by hand. Panes compare the new
frame with the old one (frozen dataclasses compare by value), so an unchanged pane is
not repainted.
"""

from __future__ import annotations

from dataclasses import dataclass

from rtplay.model.events import State


@dataclass(frozen=True, slots=True)
class LogLine:
    """One line of a pane's retry-decision log."""

    at_s: float
    """Seconds since the playground was launched."""
    text: str
    kind: str
    """``retry``, ``failed``, ``reset``, ``open`` or ``fault`` (picks the colour)."""
    repeat: int = 1
    """How many times in a row the same line happened (shown as ×N)."""
    brief: tuple[str, ...] = ()
    """Shorter forms of :attr:`text`, longest first, each a whole phrase: a log with too
    little room for the text (a compact pane's one row) shows the first that fits."""

    def forms(self) -> tuple[str, ...]:
        """The text, then its shorter forms."""
        return (self.text, *self.brief)


@dataclass(frozen=True, slots=True)
class ChannelModel:
    """Counters and chart series of one channel of one transport."""

    name: str
    delivered: int | None = 0
    """None (every count here): unknown, shown so — a target without a stated seq."""
    lost: int | None = 0
    """Can never arrive (``rtplay.model.accounting``'s definition, as in the report)."""
    behind: int | None = 0
    """``pending``: published, not received yet, still recoverable: not lost."""
    lost_to_reset: int | None = 0
    duplicates: int | None = 0
    out_of_order: int | None = 0
    p50_ms: float | None = None
    p99_ms: float | None = None
    recent_p50_ms: float | None = None
    """p50 of the last 10 s (one outage does not pin it for the rest of the session)."""
    recent_p99_ms: float | None = None
    rate: float = 0.0
    """Arrivals per second right now."""
    latency: tuple[float | None, ...] = ()
    """Latency (ms) per chart sample, oldest first; None where nothing arrived."""
    arrivals: tuple[float, ...] = ()
    """Arrivals per second per chart sample, oldest first (same length as ``latency``)."""
    latency_known: bool = True
    """False for a target without a stated send time: latency shows as unknown."""


@dataclass(frozen=True, slots=True)
class PaneModel:
    """Everything one transport pane shows."""

    transport: str
    index: int
    """The number key that selects the pane (1-based)."""
    state: State = State.CONNECTING
    status: str = "connecting…"
    """The state as a user reads it: ``open``, ``retrying in 2.4 s``, ``failed: …``."""
    detail: str = ""
    """Why: the resume cursor, the retry policy, the failure reason."""
    channels: tuple[ChannelModel, ...] = ()
    connects: int = 0
    reconnects: int = 0
    downtime_s: float = 0.0
    marks: tuple[str, ...] = ()
    """A marker character (or "") per chart sample, aligned with the channel series."""
    log: tuple[LogLine, ...] = ()
    """The last few retry decisions, oldest first."""


@dataclass(frozen=True, slots=True)
class FaultRow:
    """One active fault, as the fault list shows it."""

    id: int
    kind: str
    scope: str
    """A transport or ``all``."""
    amount: str
    """``200ms``, ``503``, ``10%``… or "" for faults without one."""
    left_s: float | None
    """Seconds until it ends by itself; None when it lasts until cleared."""

    def describe(self) -> str:
        """``delay 200ms on sse (4 s left)``"""
        amount = f" {self.amount}" if self.amount else ""
        left = "" if self.left_s is None else f" ({self.left_s:.0f} s left)"
        return f"{self.kind}{amount} on {self.scope}{left}"


@dataclass(frozen=True, slots=True)
class Dashboard:
    """One frame of the main screen."""

    panes: tuple[PaneModel, ...]
    fault_rows: tuple[FaultRow, ...] = ()
    """Every active fault, oldest first."""
    rate: float = 0.0
    published: int = 0
    elapsed_s: float = 0.0
    url: str = ""
    overloaded: tuple[str, ...] = ()
    """Which side's event loop is overloaded now: ``server``, ``client`` (see rtplay.runtime.health)."""
    unavailable: frozenset[str] = frozenset()
    """Fault kinds that cannot apply in this session (target mode, ``--direct``)."""

    @property
    def faults(self) -> tuple[str, ...]:
        """Every active fault in words, with time left for timed ones (the fault bar)."""
        return tuple(row.describe() for row in self.fault_rows)

    @property
    def active_kinds(self) -> frozenset[tuple[str, str]]:
        """(kind, scope) of every active fault: which fault keys show as on."""
        return frozenset((row.kind, row.scope) for row in self.fault_rows)


def status_of(state: State, detail: str, retry_at: float | None, now: float, attempts: int = 0) -> tuple[str, str]:
    """The pane's status line for a client state: (status, detail).

    ``retry_at`` is the monotonic time of the next attempt; the countdown is computed from
    ``now`` so it ticks down on every frame.
    """
    if state is State.OPEN:
        return "open", detail
    if state is State.CONNECTING:
        return ("connecting…" if attempts <= 1 else f"connecting… (attempt {attempts})"), ""
    if state is State.RETRYING:
        if retry_at is not None and retry_at > now:
            return f"retrying in {retry_at - now:.1f} s", detail
        return "retrying…", detail
    if state is State.FAILED:
        return f"failed: {detail}" if detail else "failed", ""
    return state.value, detail


def format_ms(value: float | None) -> str:
    """A latency for a counter: 3 significant-ish figures, ``-`` for none."""
    if value is None:
        return "-"
    if value < 10:
        return f"{value:.2f}"
    if value < 100:
        return f"{value:.1f}"
    return f"{value:.0f}"


DETAIL_SEPARATOR = " · "
"""Between the parts of a pane's detail (``since=42 · retry exp 1s×2≤5s ±50%``)."""

PLAYING = "▶"
"""Publishing (or a replay playing): the header's mark before the rate."""

PAUSED = "‖"
"""Paused (rate 0, or a replay paused). Not U+23F8 (⏸): no font of a usual Linux machine
has that glyph (DejaVu, Liberation, Noto Sans Mono lack it), so ``rtplay --web``'s page, and
a terminal with such fonts, drew it as a missing-glyph box; DejaVu Sans Mono, which the
page serves, and nearly every other font, have U+2016."""


def format_rate(rate: float) -> str:
    """A publish or arrival rate: ``paused``, ``10 msg/s``, ``1k msg/s``."""
    if rate <= 0:
        return "paused"
    if rate >= 1000 and rate % 1000 == 0:
        return f"{rate / 1000:g}k msg/s"
    return f"{rate:g} msg/s"


def format_count(n: float) -> str:
    """A compact count: 999, 1.2k, 34k, 1.2M."""
    if n < 1000:
        return f"{n:.0f}"
    if n < 10_000:
        return f"{n / 1000:.1f}k"
    if n < 1_000_000:
        return f"{n / 1000:.0f}k"
    return f"{n / 1_000_000:.1f}M"
