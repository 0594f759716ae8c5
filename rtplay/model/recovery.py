"""Recovery figures per fault per transport. Pure: fed events and times, never reads a clock.

For each fault and each transport in its scope: how long until the client noticed, how long
until it recovered, and what the fault cost. The rules (the README says the same):

- A fault *owns* a transport's events from its start until its recovery or until the next
  fault on that transport starts, whichever is first. Faults whose times overlap name each
  other (``overlaps``).
- ``time_to_detect_s``: fault start → the first disconnect, retry or failure it owns.
- ``time_to_recover_s``: fault end (or the moment the client noticed, if later) → the first
  arrival on the transport's resumable channel of a message published after the fault ended
  (so nothing already in flight when a connection was dropped counts); when the client
  noticed, it must come on a connection opened after it noticed. The same on every transport.
- ``lost``: seqs published while the fault owned the transport that are lost by the one
  accounting model (:mod:`rtplay.model.accounting`); ``lost_to_reset``: what resets it owned said
  were gone; ``duplicates``: copies it owned; ``replayed``: messages actually received from
  the backlog a reconnect it owned asked for (reset ones never arrive, so never count).
  None of them can be negative.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from rtplay.model.accounting import View
from rtplay.model.channels import ChannelStats
from rtplay.model.events import (
    Connected,
    Disconnected,
    Event,
    Failed,
    ResetReceived,
    RetryScheduled,
)

#: Recovery records kept (oldest dropped first): a long session toggling faults must not grow.
MAX_RECORDS = 1000

#: Records per transport still fed events and arrivals. Older ones are long settled; this
#: also bounds the per-message work of :meth:`RecoveryTracker.wants_arrivals`.
MAX_OPEN_PER_TRANSPORT = 32

Channels = Mapping[str, ChannelStats]
"""A transport's channels, the resumable one first."""


@dataclass
class Recovery:
    fault_id: int
    fault: str
    """Human description, e.g. ``delay 200ms on sse``."""
    transport: str
    started: float
    published_at_start: int
    ended: float | None = None
    published_at_end: int | None = None
    detected_at: float | None = None
    reconnected_at: float | None = None
    recovered_at: float | None = None
    failed: str | None = None
    """Set when the client gave up for good during the fault."""
    owned_until: int | None = None
    """The hub's last seq when ownership ended (recovery or the next fault); None while owned."""
    superseded: bool = False
    """The next fault on this transport started: nothing more is credited here."""
    replay_window: tuple[int, float] | None = None
    """(cursor, reconnect time): a reconnect it owned asked for every seq after the cursor
    published before that moment (known by each message's own send time, not a lagging count)."""
    replayed: int = 0
    reset: dict[str, int] = field(default_factory=dict)
    duplicates: dict[str, int] = field(default_factory=dict)
    overlaps: list[int] = field(default_factory=list)
    taken_by: int | None = None
    """The fault that superseded this record while it still owned its transport's events."""

    @property
    def owned(self) -> bool:
        return self.owned_until is None

    def end_ownership(self, published: int) -> None:
        if self.owned_until is None:
            self.owned_until = published

    def active_until(self) -> float:
        return float("inf") if self.ended is None else self.ended

    def to_json(self, channels: Channels | None, view: View | None) -> dict[str, object]:
        def since(t: float | None, ref: float | None) -> float | None:
            return None if t is None or ref is None else round(max(0.0, t - ref), 3)

        recover_ref = None if self.ended is None else max(self.ended, self.detected_at or self.ended)
        names = list(channels) if channels else ["main"]
        hi = self.owned_until if self.owned_until is not None else (view.published if view else 0)
        per_channel = {
            name: {
                "lost": 0 if not channels or view is None
                else channels[name].lost_in(view, self.published_at_start + 1, hi),
                "lost_to_reset": self.reset.get(name, 0),
                "duplicates": self.duplicates.get(name, 0),
            }
            for name in names
        }
        primary = per_channel[names[0]]
        entry: dict[str, object] = {
            "id": self.fault_id,
            "fault": self.fault,
            "transport": self.transport,
            "start_s": round(self.started, 3),
            "end_s": None if self.ended is None else round(self.ended, 3),
            "time_to_detect_s": since(self.detected_at, self.started),
            "time_to_recover_s": since(self.recovered_at, recover_ref),
            **primary,
            "replayed": self.replayed,
            "overlaps": sorted(self.overlaps),
        }
        if len(per_channel) > 1:
            entry["channels"] = per_channel
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

    def clear(self) -> None:
        """Forget every record (the user reset the counters)."""
        self.records.clear()
        self._open.clear()

    def fault_started(
        self, fault_id: int, fault: str, transports: Iterable[str], now: float, one_shot: bool, published: int
    ) -> None:
        t = now - self.origin
        for name in transports:
            open_recs = self._open.setdefault(name, [])
            for earlier in open_recs:  # the new fault takes over this transport's events
                if earlier.owned and not earlier.superseded:
                    earlier.taken_by = fault_id
                earlier.end_ownership(published)
                earlier.superseded = True
                if earlier.active_until() >= t:
                    earlier.overlaps.append(fault_id)
            rec = Recovery(fault_id, fault, name, t, published)
            rec.overlaps = [e.fault_id for e in open_recs if e.active_until() >= t]
            if one_shot:
                rec.ended, rec.published_at_end = rec.started, published
            self.records.append(rec)
            open_recs.append(rec)
            del open_recs[:-MAX_OPEN_PER_TRANSPORT]
        del self.records[:-MAX_RECORDS]

    def rename(self, fault_id: int, new_id: int, fault: str) -> None:
        """The records opened under ``fault_id`` (a provisional id) belong to ``new_id``."""
        for rec in self.records:
            if rec.fault_id == fault_id:
                rec.fault_id, rec.fault = new_id, fault
            rec.overlaps = [new_id if i == fault_id else i for i in rec.overlaps]
            if rec.taken_by == fault_id:
                rec.taken_by = new_id

    def withdraw(self, fault_id: int) -> None:
        """Forget the records of a fault that never started (its command failed): the records
        it took over own their transports' events again."""
        self.records = [r for r in self.records if r.fault_id != fault_id]
        for recs in self._open.values():
            recs[:] = [r for r in recs if r.fault_id != fault_id]
            for rec in recs:
                if rec.taken_by == fault_id:
                    rec.taken_by, rec.owned_until, rec.superseded = None, None, False
                rec.overlaps = [i for i in rec.overlaps if i != fault_id]

    def confirmed(self, fault_id: int, published: int, one_shot: bool) -> None:
        """A fault whose records were opened ahead of it (with ``one_shot`` False) has started
        on the server, the hub's last seq then being ``published``; a one-shot one has acted,
        and ends where it started."""
        for recs in self._open.values():
            for rec in recs:
                if rec.fault_id != fault_id:
                    continue
                rec.published_at_start = published
                if one_shot and rec.ended is None:
                    rec.ended, rec.published_at_end = rec.started, published

    def published_at_start(self, fault_id: int) -> int | None:
        """The hub's last seq ``fault_id``'s records count from (None: it has none)."""
        return next((r.published_at_start for r in self.records if r.fault_id == fault_id), None)

    def fault_ended(self, fault_id: int, now: float, published: int) -> None:
        for recs in self._open.values():
            for rec in recs:
                if rec.fault_id == fault_id and rec.ended is None:
                    rec.ended, rec.published_at_end = now - self.origin, published

    def _current(self, transport: str) -> Recovery | None:
        """The record that owns ``transport``'s events now, if any."""
        recs = self._open.get(transport)
        if not recs or recs[-1].superseded:
            return None
        return recs[-1] if recs[-1].owned else None

    def on_event(self, event: Event, cursor: int, published: int) -> None:
        """Feed a client event; ``cursor`` is that client's, ``published`` the hub's last seq."""
        rec = self._current(event.transport)
        if rec is None:
            return
        t = event.at - self.origin
        if isinstance(event, Disconnected | RetryScheduled | Failed) and rec.detected_at is None and t >= rec.started:
            rec.detected_at = t
        if isinstance(event, Failed):
            rec.failed = event.reason
            rec.end_ownership(published)
        elif isinstance(event, Connected) and rec.detected_at is not None and rec.reconnected_at is None:
            rec.reconnected_at = t
            rec.replay_window = (cursor, t)
        elif isinstance(event, ResetReceived):
            rec.reset[event.channel] = rec.reset.get(event.channel, 0) + event.lost

    def on_arrival(
        self, transport: str, channel: str, seq: int, new: bool, now: float, published: int, primary: bool,
        latency_ms: float = 0.0,
    ) -> None:
        """An envelope arrived on ``transport`` (``primary``: on its resumable channel), sent
        ``latency_ms`` before ``now``."""
        recs = self._open.get(transport)
        if not recs or recs[-1].superseded:
            return
        rec = recs[-1]
        window = rec.replay_window
        sent = now - self.origin - latency_ms / 1000
        in_replay = primary and window is not None and seq > window[0] and sent < window[1]
        if not new and (rec.owned or in_replay):
            rec.duplicates[channel] = rec.duplicates.get(channel, 0) + 1
        if not new:
            return
        if in_replay:
            rec.replayed += 1
        if rec.owned and primary and rec.published_at_end is not None and seq > rec.published_at_end:
            t = now - self.origin
            detected = rec.detected_at is not None
            if not detected or rec.reconnected_at is not None:
                rec.recovered_at = t
                rec.end_ownership(published)

    def wants_arrivals(self, transport: str) -> bool:
        """True while the transport's latest record still takes arrivals."""
        recs = self._open.get(transport)
        return recs is not None and bool(recs) and not recs[-1].superseded

    def to_json(
        self, transports: Mapping[str, tuple[Channels, View]] | None = None
    ) -> list[dict[str, object]]:
        """Every record; ``transports`` gives each transport's channels and view for ``lost``."""
        out = []
        for rec in self.records:
            channels, view = (transports or {}).get(rec.transport, (None, None))
            out.append(rec.to_json(channels, view))
        return out
