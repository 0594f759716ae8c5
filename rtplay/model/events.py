"""The small typed events the engine speaks to the TUI and to headless mode."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from rtplay.protocol.faults import Fault


class State(str, Enum):
    """What a client is doing right now, as its pane shows it."""

    CONNECTING = "connecting"
    OPEN = "open"
    RETRYING = "retrying"
    FAILED = "failed"
    STOPPED = "stopped"


@dataclass(frozen=True, slots=True)
class Event:
    transport: str
    """Which client: poll, longpoll, sse, ws, wt, rtc."""
    at: float
    """Monotonic time (s) the event happened."""


@dataclass(frozen=True, slots=True)
class Connecting(Event):
    attempt: int
    """1 for the first connection, then one more per retry."""


@dataclass(frozen=True, slots=True)
class Connected(Event):
    detail: str = ""
    """E.g. the resume cursor: ``since=42`` or ``Last-Event-ID: 42``."""


@dataclass(frozen=True, slots=True)
class Disconnected(Event):
    reason: str
    """What went wrong, in the words a user needs: ``server closed the stream``."""


@dataclass(frozen=True, slots=True)
class RetryScheduled(Event):
    delay_s: float
    """How long until the next attempt."""
    policy: str
    """Why that long: ``eventsource, the stream's retry:``, ``exp 1s×2≤5s ±50%``, ``Retry-After``…"""


@dataclass(frozen=True, slots=True)
class Failed(Event):
    reason: str
    """Why the client gave up for good (e.g. an SSE 204: no reconnect, as in a browser)."""


@dataclass(frozen=True, slots=True)
class RequestResent(Event):
    """The HTTP client sent a request again by itself: its connection was reset before any
    answer, and an idempotent request may be retried at once (RFC 9112 §9.3.1). aiohttp and
    browsers both do it silently, so without this a long-poll ``drop`` would not show at all."""

    reason: str
    """What the HTTP client hid: ``connection reset before an answer; sent again``."""


@dataclass(frozen=True, slots=True)
class ResetReceived(Event):
    channel: str
    lost: int
    """How many messages the server could no longer replay."""
    first: int = 0
    """The oldest seq the server could still send (what the reset said)."""


@dataclass(frozen=True, slots=True)
class MessageReceived(Event):
    channel: str
    seq: int
    latency_ms: float
    new: bool
    """False for a duplicate."""


@dataclass(frozen=True, slots=True)
class Judged(Event):
    """Target mode: what the target did with a reconnect, in words (rtplay.model.resumption)."""

    words: str


@dataclass(frozen=True, slots=True)
class FaultStarted(Event):
    """A fault began (``transport`` is its scope: a transport or ``all``)."""

    fault: Fault
    published: int | None = None
    """The hub's last seq as it began, as its recovery records count from (None: not known)."""


@dataclass(frozen=True, slots=True)
class FaultEnded(Event):
    """A fault was cleared, expired, or (one-shot) has acted."""

    fault: Fault


StateEvent = Connecting | Connected | Disconnected | RetryScheduled | Failed


def state_of(event: Event) -> State | None:
    """The client state an event moves to, if it changes it (one lookup: every client event
    of a crowd's reconnect wave asks, twice)."""
    return _STATE_OF.get(type(event))


_STATE_OF: dict[type[Event], State] = {
    Connecting: State.CONNECTING,
    Connected: State.OPEN,
    RetryScheduled: State.RETRYING,
    Disconnected: State.RETRYING,
    Failed: State.FAILED,
}
