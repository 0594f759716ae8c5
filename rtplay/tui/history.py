"""Chart history and the retry-decision log of each pane. Pure: fed numbers and events.

The backend samples every client's counters every :data:`SAMPLE_S` seconds into a bounded
:class:`TransportHistory`, and feeds every engine event to an :class:`EventLog` that turns
``Disconnected`` + ``RetryScheduled`` pairs into one readable line
(``server closed the stream → retry in 0.1 s (eventsource, the stream's retry:)``).
"""

from __future__ import annotations

from collections import deque
from dataclasses import replace

from rtplay.model.events import (
    Connected,
    Disconnected,
    Event,
    Failed,
    FaultEnded,
    FaultStarted,
    Judged,
    RequestResent,
    ResetReceived,
    RetryScheduled,
)
from rtplay.protocol.faults import ONE_SHOT, Fault
from rtplay.tui.model import LogLine

#: Seconds per chart sample. Two samples per braille column: a 40-column pane shows 40 s.
SAMPLE_S = 0.5

#: Samples kept per channel: 4 minutes at :data:`SAMPLE_S`, more than a full-screen chart
#: on a 200-column terminal shows. Older samples are dropped.
MAX_SAMPLES = 480

#: Log lines kept per transport; a pane shows the newest that fit.
MAX_LOG_LINES = 50

MARK_FAULT = "▲"
MARK_FAULT_END = "△"
MARK_FAILED = "✖"
MARK_RESET = "◆"
MARK_DOWN = "×"
MARK_UP = "↑"
MARK_OVERLOAD = "!"
"""A sample during which rtplay's own server or client loop was overloaded."""

#: When several things happen within one sample, the marker shown is the first here.
MARK_PRIORITY = (MARK_FAULT, MARK_FAILED, MARK_RESET, MARK_FAULT_END, MARK_DOWN, MARK_UP, MARK_OVERLOAD)


def stronger(a: str, b: str) -> str:
    """The marker that wins a chart column: ``a`` or ``b`` ("" = none)."""
    if not a:
        return b
    if not b:
        return a
    return a if MARK_PRIORITY.index(a) <= MARK_PRIORITY.index(b) else b


class ChannelHistory:
    """Latency and arrival-rate samples of one channel."""

    def __init__(self, maxlen: int = MAX_SAMPLES) -> None:
        self.latency: deque[float | None] = deque(maxlen=maxlen)
        self.arrivals: deque[float] = deque(maxlen=maxlen)
        self._delivered = 0

    def sample(self, delivered: int, latency_ms: float | None, dt: float) -> None:
        """Record one sample: ``delivered`` is the channel's running total, ``latency_ms``
        the worst latency of the period (ignored when nothing new arrived)."""
        new = max(0, delivered - self._delivered)
        self._delivered = delivered
        self.arrivals.append(new / dt if dt > 0 else 0.0)
        self.latency.append(latency_ms if new else None)


class TransportHistory:
    """The samples of every channel of one transport, plus the marker per sample."""

    def __init__(self, channels: tuple[str, ...], maxlen: int = MAX_SAMPLES) -> None:
        self.channels = {name: ChannelHistory(maxlen) for name in channels}
        self.marks: deque[str] = deque(maxlen=maxlen)
        self._pending = ""

    def mark(self, char: str) -> None:
        """Put a marker on the next sample (the strongest of a sample's markers wins)."""
        self._pending = stronger(self._pending, char)

    def close_sample(self) -> None:
        """End the current sample period: its marker is fixed."""
        self.marks.append(self._pending)
        self._pending = ""


def _secs(delay: float) -> str:
    """``0.8 s`` with a no-break space: a wrapped line never splits a number from its unit."""
    return f"{round(delay, 1):g}\u00a0s"


def fault_brief(head: str, fault: Fault) -> tuple[str, ...]:
    """``fault: delay on ws``, ``fault: delay``: a fault's log line without its amount."""
    return (f"{head}: {fault.kind.value} on {fault.scope}", f"{head}: {fault.kind.value}")


class EventLog:
    """The last retry decisions of one transport, built from the engine's events."""

    def __init__(self, origin: float, maxlen: int = MAX_LOG_LINES) -> None:
        self.origin = origin
        self.lines: deque[LogLine] = deque(maxlen=maxlen)
        self._pending_reason: str | None = None
        self._connected_once = False
        self.last_reason: str | None = None
        """Why the connection went down, until it is back or a fault starts or ends (a
        client that keeps failing, like a poll on schedule, says it only the first time)."""
        self._down_at: float | None = None
        """When the connection last went down (None: up)."""

    def on_event(self, event: Event) -> str:
        """Log ``event`` if a user needs it; return its chart marker ("" for none)."""
        at = event.at - self.origin
        if isinstance(event, Disconnected):
            self._pending_reason = self.last_reason = event.reason
            self._down_at = event.at
            self._say(at, event.reason, "down", "connection lost")
            return MARK_DOWN
        if isinstance(event, RetryScheduled):
            self._retry(at, event)
            return ""
        if isinstance(event, Connected):
            self._pending_reason = self.last_reason = None
            self._down_at = None
            word = "reconnected" if self._connected_once else "connected"
            first = not self._connected_once
            self._connected_once = True
            self._say(at, f"{word} ({event.detail})" if event.detail else word, "open", word)
            return "" if first else MARK_UP
        if isinstance(event, Failed):
            self._pending_reason = None
            self._say(at, f"failed: {event.reason} — no retry", "failed", f"failed: {event.reason}", "failed, no retry")
            return MARK_FAILED
        if isinstance(event, RequestResent):
            self._say(at, event.reason, "down", "connection reset; request resent", "reset; request resent")
            return MARK_DOWN
        if isinstance(event, ResetReceived):
            where = "" if event.channel == "main" else f" on {event.channel}"
            gone = f"{event.lost} msgs gone"
            self._say(at, f"reset{where}: {gone} from the server's buffer", "reset", f"reset{where}: {gone}", f"reset: {gone}")
            return MARK_RESET
        if isinstance(event, Judged):  # target mode: what the server did with the reconnect
            self._add(LogLine(at, f"target {event.words}", "reset" if "lost" in event.words else "open"))
            return ""
        if isinstance(event, FaultStarted):
            self._cause_may_change(event.at)
            self._say(at, f"fault: {event.fault.describe()}", "fault", *fault_brief("fault", event.fault))
            return MARK_FAULT
        if isinstance(event, FaultEnded):
            if event.fault.kind in ONE_SHOT:  # a drop acts once: "ended" says nothing new
                return ""
            self._cause_may_change(event.at)
            self._say(at, f"fault over: {event.fault.describe()}", "fault", *fault_brief("fault over", event.fault))
            return MARK_FAULT_END
        return ""

    def _cause_may_change(self, at: float) -> None:
        """A fault started or ended at ``at``: a client down since before it may now fail for
        another reason. One that went down at or after it went down because of it; its
        events can arrive before the fault's (the server hangs up first, then says so)."""
        if self._down_at is None or self._down_at < at:
            self.last_reason = None

    def _retry(self, at: float, event: RetryScheduled) -> None:
        if event.policy.startswith("next "):  # the policy already says when (fixed polling)
            decision = short = f"→ {event.policy}"
            shorter: tuple[str, ...] = ()
        else:  # shorter forms: the pane's status names the policy, and counts down the wait
            decision = f"→ retry in {_secs(event.delay_s)} ({event.policy})"
            short, shorter = f"→ retry in {_secs(event.delay_s)}", ("→ retry",)
        reason, self._pending_reason = self._pending_reason, None
        if reason is not None and self.lines and self.lines[-1].kind == "down":
            # One line: why it went down and what the client decided.
            down = self.lines.pop()
            if down.repeat > 1:
                self.lines.append(replace(down, repeat=down.repeat - 1))
        else:
            reason = self.last_reason  # still failing for the reason last given, or None
        if reason is None:
            self._say(at, decision, "retry", short)
        else:
            self._say(at, f"{reason} {decision}", "retry", f"{reason} {short}", *(f"{reason} {w}" for w in shorter), short)

    def _say(self, at: float, text: str, kind: str, *brief: str) -> None:
        """Log ``text``; ``brief``: its shorter forms, longest first (a compact pane's one row)."""
        self._add(LogLine(at, text, kind, brief=brief))

    def _add(self, line: LogLine) -> None:
        last = self.lines[-1] if self.lines else None
        if last is not None and last.text == line.text:
            self.lines[-1] = replace(line, repeat=last.repeat + 1)
        else:
            self.lines.append(line)

    def tail(self, n: int) -> tuple[LogLine, ...]:
        """The newest ``n`` lines, oldest first."""
        return tuple(self.lines)[-n:] if n > 0 else ()
