"""A recorded run played back: every figure at any moment of it, from its message log. Pure.

``rtplay replay`` feeds the log's records (:mod:`rtplay.engine.message_log`'s format) into the
same accounting the live clients use (:class:`rtplay.model.channels.ChannelStats`,
:class:`rtplay.model.channels.ConnectionStats`), record by record, as each client did when it
wrote them. :meth:`Playback.advance_to` moves forward; going back starts again from the first
record (:meth:`Playback.rewound`), so a figure at a moment is always the same however one got
there. At the log's ``end`` record the figures are taken against what the run's report was
(published count, replay buffer, settled tails), so they are that report's figures.

:class:`PlayClock` maps a wall clock (passed in as ``now``) to the run's clock: pause, seek,
speed. Nothing here reads a clock or a file.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from rtplay.model.accounting import View, is_recoverable
from rtplay.model.channels import ChannelStats, ConnectionStats
from rtplay.model.events import State

MAIN = "main"

#: Speeds ``[`` and ``]`` move between (halving, doubling): 1/16× to 64×.
MIN_SPEED = 1 / 16
MAX_SPEED = 64.0


class PlaybackError(ValueError):
    """A log that cannot be played back: says why."""


@dataclass(frozen=True)
class Layout:
    """A transport's channels, the resumable one first, and which of them are unreliable."""

    channels: tuple[str, ...] = (MAIN,)
    unreliable: tuple[str, ...] = ()


@dataclass(frozen=True)
class FaultSpan:
    """A fault of the recording: when it started and (unless one-shot or still on) ended."""

    id: int
    text: str
    scope: str
    start: float
    end: float | None
    one_shot: bool


def _number(rec: Mapping[str, Any], key: str) -> float:
    value = rec.get(key)
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise PlaybackError(f"record {dict(rec)!r}: {key!r} must be a number")
    return float(value)


class TransportPlayback:
    """One client's figures, rebuilt from its records as the client built them."""

    def __init__(self, name: str, layout: Layout, cutoff: float | None) -> None:
        self.name = name
        self.layout = layout
        self.stats = {ch: ChannelStats.unreliable() if ch in layout.unreliable else ChannelStats()
                      for ch in layout.channels}
        self.conn = ConnectionStats()
        self.conn.cutoff = cutoff  # publishing stopped here: downtime is not counted past it
        self.state = State.CONNECTING
        self.subscribed_until: int | None = None

    @property
    def cursor(self) -> int:
        """The highest seq of the resumable channel."""
        return self.stats[self.layout.channels[0]].tracker.highest

    def _channel(self, rec: Mapping[str, Any]) -> ChannelStats:
        ch = rec.get("ch", MAIN)
        if ch not in self.stats:
            raise PlaybackError(f"{self.name} has no channel {ch!r} (channels {', '.join(self.stats)})")
        return self.stats[str(ch)]

    def feed(self, rec: Mapping[str, Any], at: float, pub: int) -> None:
        """One of this client's records (mirrors :class:`rtplay.clients.base.Client`)."""
        ev = rec["ev"]
        if ev == "msg":
            stats = self._channel(rec)
            stats.on_message(int(_number(rec, "seq")), 0.0, _number(rec, "lat"), at)
            stats.add_wire_bytes(int(rec.get("b") or 0))
        elif ev == "bytes":
            self._channel(rec).add_wire_bytes(int(rec.get("b") or 0))
        elif ev == "reset":
            tracker = self._channel(rec).tracker
            first = int(_number(rec, "first"))
            if first - 1 < tracker.highest:  # as Client.on_reset: a cursor ahead of the server
                tracker.rewind(first)
            tracker.reset(first)
        elif ev == "live":
            live = self._channel(rec).live
            if live is None:
                raise PlaybackError(f"{self.name}/{rec.get('ch')}: 'live' on a reliable channel")
            live.live_from(int(_number(rec, "first")))
        elif ev == "up":
            self.conn.on_connected(at)
            self.state = State.OPEN
        elif ev in ("down", "failed"):
            self.conn.on_disconnected(at)
            for stats in self.stats.values():
                if stats.live is not None:
                    stats.live.went_down(pub)
            self.state = State.FAILED if ev == "failed" else State.RETRYING
            if ev == "failed":
                self.subscribed_until = pub
        elif ev == "retry":
            self.state = State.RETRYING
        elif ev == "restart":
            for stats in self.stats.values():
                stats.restart_counting()
            self.conn.restart_counting(at)

    def view(self, published: int, replay_from: int, final: bool) -> View:
        """As ``Client.view``: the context the figures are taken in."""
        if self.subscribed_until is not None:
            published = min(published, self.subscribed_until)
        recoverable = is_recoverable(self.state is State.FAILED, self.conn.connected, self.cursor, replay_from)
        return View(published, recoverable, final)

    def report(self, view: View, now: float) -> dict[str, Any]:
        """This transport's entry of the JSON report, as ``Client.report`` builds it."""
        base: dict[str, Any] = {
            "state": self.state.value, "connects": self.conn.connects, "reconnects": self.conn.reconnects,
            "downtime_s": round(self.conn.downtime(now), 3),
        }
        if self.layout.channels == (MAIN,):
            return self.stats[MAIN].report(view, now) | base
        channels = {name: stats.report(view, now) for name, stats in self.stats.items()}
        return channels[self.layout.channels[0]] | base | {"channels": channels}


class Playback:
    """Every transport's figures at a moment of a recorded run."""

    def __init__(self, records: Sequence[Mapping[str, Any]], layouts: Mapping[str, Layout]) -> None:
        if not records or records[-1].get("ev") != "end":
            raise PlaybackError("the log has no 'end' record: was the run cut short? (a complete log ends with it)")
        self.records = records
        self.end = records[-1]
        self.layouts = dict(layouts)
        clients = self.end.get("clients")
        if not isinstance(clients, dict) or not clients:
            raise PlaybackError("the log's 'end' record names no clients")
        self.transports = list(clients)
        self.end_at = _number(self.end, "at")
        self.faults = fault_spans(records)
        self._body = [r for r in records[:-1] if isinstance(r.get("at"), int | float)]
        self._reset()

    def _reset(self) -> None:
        cutoff = self.end.get("cutoff")
        cut = float(cutoff) if isinstance(cutoff, int | float) else None
        self.clients = {n: TransportPlayback(n, self.layouts.get(n, Layout()), cut) for n in self.transports}
        self.position = 0.0
        self.published = 0
        self._next = 0

    @property
    def at_end(self) -> bool:
        """Every record has been played (the figures are the report's)."""
        return self._next >= len(self._body) and self.position >= self.end_at

    def rewound(self) -> None:
        """Back to before the first record."""
        self._reset()

    def advance_to(self, t: float) -> list[Mapping[str, Any]]:
        """Play every record up to ``t`` seconds of the run; return them (oldest first)."""
        if t < self.position:
            raise PlaybackError("advance_to goes forward only: rewind first")
        played = []
        while self._next < len(self._body) and float(self._body[self._next]["at"]) <= t:
            rec = self._body[self._next]
            self._next += 1
            self._play(rec)
            played.append(rec)
        self.position = min(t, self.end_at) if self._next < len(self._body) else t
        return played

    def _play(self, rec: Mapping[str, Any]) -> None:
        pub = rec.get("pub", rec.get("published"))
        if isinstance(pub, int):
            self.published = max(self.published, pub)
        name = rec.get("tr")
        if isinstance(name, str):
            client = self.clients.get(name)
            if client is None:
                raise PlaybackError(f"a record of {name!r}, which the 'end' record does not name")
            client.feed(rec, float(rec["at"]), self.published)

    def view_of(self, name: str) -> View:
        """The context ``name``'s figures are taken in now: the end record's once at the end."""
        client = self.clients[name]
        replay_from = int(self.end.get("replay_from") or 1)
        if not self.at_end:
            return client.view(self.published, replay_from, False)
        end_client = self.end["clients"][name]
        client.state = State(end_client["state"])
        client.subscribed_until = end_client.get("subscribed_until")
        published = int(self.end["published"])
        if client.subscribed_until is not None:
            published = min(published, int(client.subscribed_until))
        cursor = client.cursor
        recoverable = is_recoverable(client.state is State.FAILED, bool(end_client["connected"]), cursor, replay_from)
        return View(published, recoverable, bool(self.end.get("final")))

    def now(self) -> float:
        """The run's clock at this point of the playback."""
        return self.end_at if self.at_end else self.position

    def report(self) -> dict[str, Any]:
        """The report's ``transports`` figures at this point (at the end: the run's own)."""
        now = self.now()
        return {name: c.report(self.view_of(name), now) for name, c in self.clients.items()}

    def next_fault_after(self, t: float) -> FaultSpan | None:
        """The first fault starting after ``t`` (None when there is none)."""
        return next((f for f in self.faults if f.start > t + 1e-6), None)

    def active_faults(self, t: float) -> list[FaultSpan]:
        """Faults on at ``t`` (a one-shot fault is on for the instant it acts)."""
        return [f for f in self.faults if f.start <= t and (f.end is None or t < f.end) and not f.one_shot]


def fault_spans(records: Sequence[Mapping[str, Any]]) -> list[FaultSpan]:
    """Every fault of the log, by start time."""
    started: dict[int, Mapping[str, Any]] = {}
    ended: dict[int, float] = {}
    for rec in records:
        fid = rec.get("id")
        if not isinstance(fid, int) or not isinstance(rec.get("at"), int | float):
            continue
        if rec.get("ev") == "fault_started":
            started[fid] = rec
        elif rec.get("ev") == "fault_ended":
            ended[fid] = float(rec["at"])
    spans = [FaultSpan(fid, str(r.get("text", "")), str(r.get("scope", "all")), float(r["at"]),
                       ended.get(fid), bool(r.get("one_shot"))) for fid, r in started.items()]
    return sorted(spans, key=lambda f: f.start)


class PlayClock:
    """The run's clock during playback, from a wall clock passed in: pause, seek, speed."""

    def __init__(self, length: float, now: float, speed: float = 1.0) -> None:
        self.length = length
        self.speed = min(MAX_SPEED, max(MIN_SPEED, speed))
        self.paused = False
        self._base = 0.0
        self._since = now

    def position(self, now: float) -> float:
        """Seconds into the run at wall time ``now`` (stops at the end)."""
        if self.paused:
            return self._base
        return min(self.length, self._base + (now - self._since) * self.speed)

    def _rebase(self, position: float, now: float) -> None:
        self._base = min(self.length, max(0.0, position))
        self._since = now

    def toggle_pause(self, now: float) -> bool:
        """Pause or resume; True when now paused."""
        self._rebase(self.position(now), now)
        self.paused = not self.paused
        return self.paused

    def seek(self, position: float, now: float) -> float:
        """Jump to ``position`` seconds of the run (clamped); return where it landed."""
        self._rebase(position, now)
        return self._base

    def scale(self, factor: float, now: float) -> float:
        """Multiply the speed by ``factor`` (within :data:`MIN_SPEED`..:data:`MAX_SPEED`); the new speed."""
        self._rebase(self.position(now), now)
        self.speed = min(MAX_SPEED, max(MIN_SPEED, self.speed * factor))
        return self.speed


def report_from_log(records: Sequence[Mapping[str, Any]], layouts: Mapping[str, Layout]) -> dict[str, Any]:
    """A report rebuilt from a log alone (a recorded playground session has no JSON report):
    the transports' figures at the end, the published count and duration. Per-fault recovery
    figures and health are not in a log; the report says so (``"from_log": true``)."""
    playback = Playback(records, layouts)
    playback.advance_to(playback.end_at)
    cutoff = playback.end.get("cutoff")
    duration = float(cutoff) if isinstance(cutoff, int | float) else playback.end_at
    return {
        "published": int(playback.end.get("published") or 0), "duration_s": round(duration, 3),
        "settled": None, "transports": playback.report(), "faults": [], "from_log": True,
    }
