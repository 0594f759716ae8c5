"""The sequenced message source and its bounded replay buffer. No I/O, no clock.

Every transport carries the same envelope (:mod:`rtplay.protocol.envelope`). The hub keeps the
last ``capacity`` envelopes so that a client can resume from
its cursor; a cursor older than the buffer gets an explicit :class:`Reset`, never silent loss.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from itertools import islice

from rtplay.protocol.envelope import Envelope, Reset, make_envelope

#: Default replay depth. At the default 10 msg/s this is over 16 minutes of history; at
#: 1000 msg/s it is 10 s, longer than any outage a playground fault lasts by default.
DEFAULT_REPLAY_CAPACITY = 10_000

#: Default payload size in characters: big enough to look like a real message, small enough
#: that the transports, not the payload, dominate the wire bytes.
DEFAULT_PAYLOAD_SIZE = 32


@dataclass(frozen=True, slots=True)
class Backlog:
    """What a client resuming from a cursor gets: the buffered envelopes and maybe a reset."""

    messages: list[Envelope]
    reset: Reset | None = None
    after: int = 0
    """The cursor the stream goes on from: the one asked for, or (when that one was ahead of
    the newest seq: a restarted server, a bogus client) just before the reset's ``first``, so
    the buffer is replayed and live envelopes follow. Filtering live envelopes on a future
    cursor would answer the reset with silence."""


def make_payload(seq: int, size: int) -> str:
    """A deterministic, human-readable payload of ``size`` characters for message ``seq``."""
    head = f"msg-{seq}"
    return (head + "." * size)[:size] if size > len(head) else head


#: Envelopes whose spacing :meth:`Hub.gap_ms` averages. The publisher sends a dense stream in
#: bursts a few ms apart (its tick), each burst's envelopes stamped within microseconds: the
#: two newest alone were either microseconds or a whole tick apart, and at 1000 msg/s the
#: tick's ~5 ms gap made the stream look sparse at every burst's first envelope (long-poll
#: answers went out at once with one burst, ~5 messages, instead of coalescing ~20).
GAP_SPAN = 16


class Hub:
    """Assigns sequence numbers and keeps a bounded replay buffer."""

    def __init__(
        self,
        capacity: int = DEFAULT_REPLAY_CAPACITY,
        payload_size: int = DEFAULT_PAYLOAD_SIZE,
    ) -> None:
        if capacity < 1:
            raise ValueError("replay capacity must be at least 1")
        self._buffer: deque[Envelope] = deque(maxlen=capacity)
        self._payload_size = payload_size
        self.last_seq = 0
        """The seq of the newest published envelope (0 before the first)."""

    @property
    def capacity(self) -> int:
        assert self._buffer.maxlen is not None
        return self._buffer.maxlen

    @property
    def first_available(self) -> int:
        """The oldest seq a resume can still get (``last_seq + 1`` when the buffer is empty)."""
        return self._buffer[0].seq if self._buffer else self.last_seq + 1

    def publish(self, now_ms: float, data: str | None = None) -> Envelope:
        """Publish the next envelope, sent at ``now_ms`` (Unix epoch milliseconds)."""
        seq = self.last_seq + 1
        payload = make_payload(seq, self._payload_size) if data is None else data
        envelope = make_envelope(seq, now_ms, payload)
        self._buffer.append(envelope)
        self.last_seq = seq
        return envelope

    def gap_ms(self) -> float | None:
        """How far apart the newest envelopes were stamped, on average over the newest
        :data:`GAP_SPAN` (None with fewer than two)."""
        count = min(len(self._buffer), GAP_SPAN)
        if count < 2:
            return None
        return (self._buffer[-1].t - self._buffer[-count].t) / (count - 1)

    def since(self, cursor: int) -> Backlog:
        """Every buffered envelope with ``seq > cursor``, and a reset if some were evicted."""
        if cursor < 0:
            raise ValueError("cursor must be >= 0")
        first = self.first_available
        # A cursor ahead of the newest seq (the server restarted, or a bogus client) is reset
        # explicitly to where the stream really is, never answered with silence.
        reset = Reset(cursor, first) if cursor + 1 < first or cursor > self.last_seq else None
        if cursor > self.last_seq:  # after the reset, everything buffered, then the live stream
            cursor = first - 1
        after = cursor
        if not self._buffer or cursor >= self.last_seq:
            return Backlog([], reset, after)
        start = max(0, cursor + 1 - self._buffer[0].seq)
        messages = list(islice(self._buffer, start, None))
        return Backlog(messages, reset, after)

    def forget(self) -> None:
        """Lose the replay buffer (a server crash) but keep counting: resumes get a reset."""
        self._buffer.clear()
