"""The reference accounting model: per-seq sets, obviously correct, slow on purpose.

It states the definitions of ``rtplay.model.accounting`` (and of the per-fault records of
``rtplay.model.recovery``) the plainest way: every seq is put in a set, every figure is a set size.
The property tests and the message-log recompute test compare the real model with it.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class OracleChannel:
    """One channel: which seqs arrived, were reset away, or were never sent (skipped)."""

    unreliable: bool = False
    delivered: set[int] = field(default_factory=set)
    reset: set[int] = field(default_factory=set)
    skipped: set[int] = field(default_factory=set)
    """Seqs published while an unreliable channel was down: never sent on it."""
    highest: int = 0
    first: int | None = None
    duplicates: int = 0
    out_of_order: int = 0
    down: bool = False
    down_set: set[int] = field(default_factory=set)
    down_after: int = 0

    def accounted(self, seq: int) -> bool:
        return seq in self.delivered or seq in self.reset or seq in self.skipped

    def see(self, seq: int) -> bool:
        if self.first is None:
            self.first = seq
        if self.accounted(seq):
            self.duplicates += 1
            return False
        if seq <= self.highest:  # a late fill: below the highest arrival, or at a highest
            self.out_of_order += 1  # the channel's accounting raised without one (down, then live)
        self.delivered.add(seq)
        self.highest = max(self.highest, seq)
        return True

    def do_reset(self, first: int) -> int:
        gone = {s for s in range(1, first) if not self.accounted(s)}
        self.reset |= gone
        self.highest = max(self.highest, first - 1)
        return len(gone)

    def went_down(self, published: int | None = None) -> None:
        if not self.down:
            self.down = True
            self.down_after = max(self.highest, published or 0)

    def live_from(self, first: int) -> None:
        if self.down:  # due before the session ended, never came: holes
            self.highest = max(self.highest, min(self.down_after, first - 1))
        never_sent = set(range(self.highest + 1, first))
        self.skipped |= never_sent  # never sent on the channel: not holes
        if self.down:  # ...and published while it was down
            self.down_set |= never_sent
        self.down = False
        self.highest = max(self.highest, first - 1)

    def missing(self, lo: int, hi: int) -> set[int]:
        return {s for s in range(max(lo, 1), hi + 1) if not self.accounted(s)}

    # --- figures ---------------------------------------------------------------------------

    def reliable(self, published: int, recoverable: bool) -> dict[str, int]:
        holes = len(self.missing(1, self.highest))
        tail = len(self.missing(self.highest + 1, published))
        return {
            "delivered": len(self.delivered),
            "pending": tail if recoverable else 0,
            "lost": holes + (0 if recoverable else tail),
            "lost_to_reset": len(self.reset),
            "duplicates": self.duplicates,
            "out_of_order": self.out_of_order,
        }

    def end(self, published: int, final: bool) -> int:
        return published if final or self.down else min(self.highest, published)

    def down_seqs(self, published: int) -> set[int]:
        """Seqs the channel could not receive: skipped ones after its first arrival, and
        everything after its last arrival while it is down now."""
        if self.first is None:
            return set()
        down = {s for s in self.down_set if s >= self.first}
        if self.down:
            down |= set(range(max(self.highest, self.down_after) + 1, published + 1))
        return down

    def unreliable_lost(self, published: int, final: bool, lo: int = 1, hi: int | None = None) -> tuple[int, int]:
        if self.first is None:
            return 0, 0
        end = self.end(published, final)
        span = set(range(max(lo, self.first), min(end, published if hi is None else hi) + 1))
        down = self.down_seqs(published) & span
        never = span - self.delivered - self.reset - down - self.skipped
        return len(never), len(down)

    def unreliable_figures(self, published: int, final: bool) -> dict[str, object]:
        connected, down = self.unreliable_lost(published, final)
        span = 0 if self.first is None else max(0, self.end(published, final) - self.first + 1)
        lost = connected + down
        return {
            "delivered": len(self.delivered),
            "pending": 0,
            "lost": lost,
            "lost_while_connected": connected,
            "lost_while_down": down,
            "loss_rate": round(lost / span, 4) if span else None,
            "lost_to_reset": 0,
            "duplicates": self.duplicates,
            "out_of_order": self.out_of_order,
        }

    def figures(self, published: int, recoverable: bool, final: bool) -> dict[str, object]:
        if self.unreliable:
            return self.unreliable_figures(published, final)
        return dict(self.reliable(published, recoverable))

    def lost_in(self, published: int, recoverable: bool, final: bool, lo: int, hi: int) -> int:
        if self.unreliable:
            return sum(self.unreliable_lost(published, final, lo, hi))
        hi = min(hi, published)
        lost = self.missing(lo, min(hi, self.highest))
        if not recoverable:
            lost |= self.missing(max(lo, self.highest + 1), hi)
        return len(lost)


# --- per-fault records, recomputed from the whole event list at once ------------------------


@dataclass
class Ev:
    """One thing that happened on a transport, in order (``t`` seconds since the start)."""

    t: float
    kind: str
    """fault_start, fault_end, down (disconnect/retry/failure), failed, up, reset, msg."""
    published: int
    fault: int = 0
    one_shot: bool = False
    acted: int | None = None
    """A one-shot fault the session opened records for ahead of it: the hub's last seq when
    it acted (its records end there)."""
    seq: int = 0
    new: bool = False
    primary: bool = True
    channel: str = "main"
    lost: int = 0
    cursor: int = 0
    lat: float = 0.0
    """A message's latency (ms): it was published ``lat`` before it arrived."""


def fault_records(events: list[Ev]) -> dict[int, dict[str, object]]:
    """Per fault: its figures by the ownership rules, walking the event list from scratch."""
    out = {}
    starts = [i for i, e in enumerate(events) if e.kind == "fault_start"]
    for n, i in enumerate(starts):
        start = events[i]
        stop = starts[n + 1] if n + 1 < len(starts) else len(events)
        ended: float | None = start.t if start.one_shot else None
        detected = reconnected = recovered = None
        owned_until: int | None = None
        window: tuple[int, float] | None = None
        replayed = 0
        resets: dict[str, int] = {}
        dups: dict[str, int] = {}
        for e in events[i + 1:]:
            if e.kind == "fault_end" and e.fault == start.fault and ended is None:
                ended = e.t  # its end is known even after it lost ownership
        for e in events[i + 1:stop]:
            owned = owned_until is None
            if e.kind == "fault_end":
                continue
            if e.kind in ("down", "failed") and owned and detected is None:
                detected = e.t
            if e.kind == "failed" and owned:
                owned_until = e.published
            elif e.kind == "up" and owned and detected is not None and reconnected is None:
                reconnected, window = e.t, (e.cursor, e.t)
            elif e.kind == "reset" and owned:
                resets[e.channel] = resets.get(e.channel, 0) + e.lost
            elif e.kind == "msg":
                in_replay = e.primary and window is not None and e.seq > window[0] and e.t - e.lat / 1000 < window[1]
                if not e.new and (owned or in_replay):
                    dups[e.channel] = dups.get(e.channel, 0) + 1
                if e.new and in_replay:
                    replayed += 1
                end_pub = _ended_by(events, start, upto=e)
                if e.new and owned and e.primary and end_pub is not None and e.seq > end_pub:
                    if detected is None or reconnected is not None:
                        recovered = e.t
                        owned_until = e.published
        if owned_until is None and stop < len(events):
            owned_until = events[stop].published
        out[start.fault] = {
            "start": start.t, "published_at_start": start.published, "ended": ended, "detected": detected,
            "recovered": recovered, "owned_until": owned_until, "replayed": replayed, "resets": resets, "dups": dups,
        }
    return out


def _ended_by(events: list[Ev], start: Ev, upto: Ev) -> int | None:
    """The hub's last seq when the fault ``start`` began ended, if it had by ``upto``."""
    if start.one_shot:
        return start.published if start.acted is None else start.acted
    for e in events:
        if e is upto:
            return None
        if e.kind == "fault_end" and e.fault == start.fault:
            return e.published
    return None
