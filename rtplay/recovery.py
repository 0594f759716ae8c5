"""Recovery figures per fault per transport. Pure: fed events and times, never reads a clock.

For each fault and each transport in its scope: how long until the client noticed (fault
start → first disconnect/retry/failure), how long until it recovered (fault end, or the
moment it noticed if later → next new message), and what the fault cost: messages lost,
lost to a reset, duplicated, and replayed from the server's buffer on resume.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from rtplay.events import Connected, Disconnected, Event, Failed, RetryScheduled
from rtplay.metrics import ChannelStats

#: Recovery records kept (oldest dropped first): a long session toggling faults must not grow.
MAX_RECORDS = 1000

#: Records per transport still fed events and arrivals. Older ones are long settled; this
#: also bounds the per-message work of :meth:`RecoveryTracker.wants_arrivals`.
MAX_OPEN_PER_TRANSPORT = 32


def _counters(stats: dict[str, ChannelStats]) -> dict[str, tuple[int, int, int]]:
    return {
        name: (s.tracker.missing, s.tracker.lost_to_reset, s.tracker.duplicates) for name, s in stats.items()
    }


@dataclass
class Recovery:
    fault_id: int
    fault: str
    """Human description, e.g. ``delay 200ms on sse``."""
    transport: str
    started: float
    ended: float | None = None
    detected_at: float | None = None
    recovered_at: float | None = None
    failed: str | None = None
    """Set when the client gave up for good during the fault."""
    cursor_at_detect: int | None = None
    replayed: int = 0
    _base: dict[str, tuple[int, int, int]] = field(default_factory=dict)
    _delta: dict[str, tuple[int, int, int]] = field(default_factory=dict)
    frozen: bool = False
    """The cost is final: a later fault on the same transport started."""

    def measure(self, stats: dict[str, ChannelStats]) -> None:
        """Set the cost to the change in counters since the fault started."""
        now = _counters(stats)
        self._delta = {
            ch: (now[ch][0] - base[0], now[ch][1] - base[1], now[ch][2] - base[2])
            for ch in now
            for base in [self._base.get(ch, (0, 0, 0))]
        }

    def to_json(self) -> dict[str, object]:
        def since(t: float | None, ref: float | None) -> float | None:
            return None if t is None or ref is None else round(max(0.0, t - ref), 3)

        recover_ref = max(self.ended, self.detected_at or self.ended) if self.ended is not None else None
        channels = {
            name: {"lost": d[0], "lost_to_reset": d[1], "duplicates": d[2]} for name, d in self._delta.items()
        }
        primary = next(iter(channels.values()), {"lost": 0, "lost_to_reset": 0, "duplicates": 0})
        entry: dict[str, object] = {
            "fault": self.fault,
            "transport": self.transport,
            "start_s": round(self.started, 3),
            "end_s": None if self.ended is None else round(self.ended, 3),
            "time_to_detect_s": since(self.detected_at, self.started),
            "time_to_recover_s": since(self.recovered_at, recover_ref),
            "lost": primary["lost"],
            "lost_to_reset": primary["lost_to_reset"],
            "duplicates": primary["duplicates"],
            "replayed": self.replayed,
        }
        if len(channels) > 1:
            entry["channels"] = channels
        if self.failed:
            entry["failed"] = self.failed
        return entry


class RecoveryTracker:
    """Opens a record per (fault, transport) and fills it from events and arrivals."""

    def __init__(self, origin: float = 0.0) -> None:
        self.origin = origin
        """Times in the JSON are seconds since this moment (the session start)."""
        self.records: list[Recovery] = []
        self._open: dict[str, list[Recovery]] = {}

    def fault_started(
        self, fault_id: int, fault: str, transports: dict[str, dict[str, ChannelStats]], now: float, one_shot: bool
    ) -> None:
        for name, stats in transports.items():
            for earlier in self._open.get(name, ()):  # a new fault ends the earlier ones' cost window
                if not earlier.frozen:
                    earlier.measure(stats)
                    earlier.frozen = True
            rec = Recovery(fault_id, fault, name, now - self.origin, _base=_counters(stats))
            if one_shot:
                rec.ended = rec.started
            self.records.append(rec)
            open_recs = self._open.setdefault(name, [])
            open_recs.append(rec)
            del open_recs[:-MAX_OPEN_PER_TRANSPORT]
        del self.records[:-MAX_RECORDS]

    def fault_ended(self, fault_id: int, now: float) -> None:
        for recs in self._open.values():
            for rec in recs:
                if rec.fault_id == fault_id and rec.ended is None:
                    rec.ended = now - self.origin

    def on_event(self, event: Event, cursor: int, published: int) -> None:
        """Feed a client event; ``cursor`` is that client's, ``published`` the hub's last seq."""
        t = event.at - self.origin
        for rec in self._open.get(event.transport, ()):
            if rec.detected_at is None and isinstance(event, Disconnected | RetryScheduled | Failed):
                if t >= rec.started:
                    rec.detected_at = t
                    rec.cursor_at_detect = cursor
            if isinstance(event, Failed):
                rec.failed = event.reason
            if isinstance(event, Connected) and rec.cursor_at_detect is not None and not rec.replayed:
                rec.replayed = max(0, published - rec.cursor_at_detect)

    def on_arrival(self, transport: str, now: float) -> None:
        """A new message arrived on ``transport`` (first-arrival-after-recovery detection)."""
        t = now - self.origin
        for rec in self._open.get(transport, ()):
            if rec.recovered_at is not None or rec.ended is None:
                continue
            if t >= rec.ended and (rec.detected_at is None or t >= rec.detected_at):
                rec.recovered_at = t

    def wants_arrivals(self, transport: str) -> bool:
        """True while some open record of ``transport`` still waits for its first arrival."""
        return any(rec.recovered_at is None for rec in self._open.get(transport, ()))

    def close(self, transports: dict[str, dict[str, ChannelStats]]) -> None:
        """Measure the cost of every record still open (before a report; may run again)."""
        for name, recs in self._open.items():
            for rec in recs:
                if not rec.frozen and name in transports:
                    rec.measure(transports[name])

    def to_json(self) -> list[dict[str, object]]:
        return [rec.to_json() for rec in self.records]
