"""Accounting of a target's messages (target mode): what can be known, and what cannot. Pure.

With a seq (see :mod:`rtplay.model.identity`), delivered / lost / duplicates / out of order
come from :class:`~rtplay.model.accounting.SeqTracker` and
:func:`~rtplay.model.accounting.reliable_figures`, the definitions every rtplay figure uses.
Two differences follow from not owning the server: numbering starts where the target's does
(the first seq received, not 1), and rtplay does not know what the target published after the
last message it received, so ``pending`` (a tail still on its way) is unknown and ``lost``
counts only the holes the client moved past. With a send time, one-way latency. With neither,
arrivals and the gaps between them. A figure that cannot be known is ``None`` in the report
("unknown"), never 0, and :data:`NEEDS` says which adapter would measure it.
"""

from __future__ import annotations

from rtplay.model.accounting import SeqTracker, View, reliable_figures
from rtplay.model.channels import LatencyHistogram, RateMeter, RecentLatency
from rtplay.model.identity import Identified, Unreadable

#: The figures that need a seq, and those that need a send time.
SEQ_FIGURES = ("delivered", "lost", "duplicates", "out_of_order")
TIME_FIGURES = ("latency_ms",)

#: Never known in target mode, and why (the report says so).
NEVER_KNOWN = {
    "pending": "rtplay does not know what the target published after the last message it received",
    "lost_to_reset": "a target has no reset signal rtplay understands",
}


def needs(transport: str) -> dict[str, str]:
    """The adapter each seq/time figure needs, worded for ``transport``."""
    seq = f"--seq {transport}=sse-id|json:PATH" if transport == "sse" else f"--seq {transport}=json:PATH"
    time = f"--time {transport}=json:PATH[:ms|s|iso]"
    return {name: seq for name in SEQ_FIGURES} | {name: time for name in TIME_FIGURES}


class TargetStats:
    """One target's figures, from arrivals and ``now`` passed in (monotonic seconds)."""

    def __init__(self, has_seq: bool, has_time: bool) -> None:
        self.has_seq = has_seq
        self.has_time = has_time
        self.tracker: SeqTracker | None = None
        """Created at the first seq: the target's numbering starts there."""
        self.messages = 0
        """Every message received, readable or not."""
        self.unreadable = {why: 0 for why in Unreadable}
        self.latency = LatencyHistogram()
        self.recent = RecentLatency()
        self.arrivals = RateMeter()
        self.last_latency_ms: float | None = None
        self.wire_bytes = 0
        self._last_at: float | None = None
        self.max_gap_s: float | None = None
        """Longest time between two consecutive arrivals."""

    @property
    def cursor(self) -> int | None:
        """The highest seq received (what a resume asks to continue after); None before any."""
        return None if self.tracker is None else self.tracker.highest

    def _arrived(self, now: float) -> None:
        self.messages += 1
        if self._last_at is not None:
            gap = max(0.0, now - self._last_at)
            self.max_gap_s = gap if self.max_gap_s is None else max(self.max_gap_s, gap)
        self._last_at = now
        self.arrivals.add(now)

    def on_message(self, message: Identified, received_ms: float, now: float) -> bool:
        """One readable message; True when it is new (always, without a seq)."""
        self._arrived(now)
        new = True
        if message.seq is not None:
            if self.tracker is None:
                self.tracker = SeqTracker(message.seq - 1)
            new = self.tracker.see(message.seq)
        if new and message.sent_ms is not None:
            latency = max(received_ms - message.sent_ms, 0.0)
            self.recent.add(latency, now, self.latency.add(latency))
            self.last_latency_ms = latency
        return new

    def on_unreadable(self, why: Unreadable, now: float) -> None:
        """A message the stated identity could not read: counted, never parsed further."""
        self._arrived(now)
        self.unreadable[why] += 1

    def lost_between(self, lo: int, hi: int) -> int | None:
        """Holes among seqs ``[lo, hi]`` (a fault's share); None without a seq."""
        if not self.has_seq:
            return None
        if self.tracker is None:
            return 0
        return self.tracker.missing_in(lo, hi)

    def report(self, transport: str, now: float) -> dict[str, object]:
        """This target's figures: None where unknown, with what is measured and what each
        unknown figure needs."""
        out: dict[str, object] = {"messages": self.messages}
        if self.has_seq:
            tracker = self.tracker or SeqTracker()
            figures = reliable_figures(tracker, View(published=tracker.highest))
            out |= {name: figures[name] for name in SEQ_FIGURES}
        else:
            out |= dict.fromkeys(SEQ_FIGURES)
        out |= dict.fromkeys(NEVER_KNOWN)
        if self.has_time:
            out["latency_ms"] = self.latency.summary()
            out["recent_latency_ms"] = self.recent.summary(now)
        else:
            out["latency_ms"] = None
            out["recent_latency_ms"] = None
        out["max_gap_s"] = None if self.max_gap_s is None else round(self.max_gap_s, 3)
        out["unreadable"] = {why.value: n for why, n in self.unreadable.items()}
        out["wire_bytes_per_msg"] = round(self.wire_bytes / self.messages, 1) if self.messages else None
        measured = ["messages", "max_gap_s", "connects", "reconnects", "downtime_s"]
        measured += list(SEQ_FIGURES) if self.has_seq else []
        measured += list(TIME_FIGURES) if self.has_time else []
        wanted = needs(transport)
        unknown = {name: how for name, how in wanted.items() if name not in measured}
        out["measured"] = measured
        out["unknown"] = unknown | NEVER_KNOWN
        return out
