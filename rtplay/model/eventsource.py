"""The EventSource stream parser (WHATWG HTML §9.2.6, "Parsing an event stream"). No I/O.

Feed it bytes as they arrive, in chunks of any size; it hands back the dispatched events and
keeps the two pieces of state that survive reconnects: the last event ID and the
reconnection time. Any input either parses or raises :class:`SSEProtocolError` (only when a
line or an event grows past its bound) — never anything else.
"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass

#: Longest line accepted. The spec sets no limit; an endless line must not eat memory.
#: 1 MiB is far beyond any sane event line (ours are ~80 bytes).
MAX_LINE_CHARS = 1 << 20

#: Largest data buffer of one event (many ``data:`` lines add up). Same reasoning.
MAX_EVENT_CHARS = 4 << 20

#: Longest reconnection time a ``retry:`` field sets, in ms (about 31.7 years). The spec
#: takes the digits as an integer of any size; past this bound the wait is "never" in any
#: case, and converting thousands of digits would raise (Python's ``int()`` digit limit).
MAX_RECONNECTION_TIME_MS = 10**12

_LINE_END = re.compile(r"\r\n|\r|\n")


def reconnection_time(digits: str) -> int:
    """The reconnection time a ``retry:`` field of ASCII ``digits`` sets (§9.2.6: "interpret
    the field value as an integer in base ten"), saturated at :data:`MAX_RECONNECTION_TIME_MS`
    without converting an arbitrarily long field."""
    significant = digits.lstrip("0") or "0"
    if len(significant) > len(str(MAX_RECONNECTION_TIME_MS)):
        return MAX_RECONNECTION_TIME_MS
    return min(int(significant), MAX_RECONNECTION_TIME_MS)


class SSEProtocolError(Exception):
    """The stream broke a bound; the connection carrying it should be dropped."""


@dataclass(frozen=True, slots=True)
class MessageEvent:
    """One dispatched event, as an EventSource listener would receive it."""

    type: str
    """The ``event:`` field, ``"message"`` by default."""
    data: str
    """The ``data:`` lines joined with LF."""
    last_event_id: str
    """The event source's last event ID string at dispatch time."""


class EventStreamParser:
    """Incremental parser for ``text/event-stream``."""

    def __init__(self, last_event_id: str = "") -> None:
        self.last_event_id = last_event_id
        """The last event ID string; sent as ``Last-Event-ID`` on reconnect."""
        self.reconnection_time_ms: int | None = None
        """Set by a ``retry:`` field; None until the stream sends one."""
        self.comments = 0
        """Comment lines seen (heartbeats)."""
        self.keepalive_chars = 0
        """Characters of comment lines and of blank lines that dispatched nothing, line ends
        included: the stream's keep-alives, which wire-byte figures leave out."""
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._start_of_stream = True
        self._skip_lf = False
        self._buffer = ""
        self._data: list[str] = []
        self._data_chars = 0
        self._event_type = ""
        self._id_buffer = last_event_id

    def new_stream(self) -> None:
        """A reconnect: a fresh stream (BOM allowed again); the event ID and retry persist."""
        self._decoder.reset()
        self._start_of_stream = True
        self._skip_lf = False
        self._buffer = ""
        self._reset_event()
        self._id_buffer = self.last_event_id

    def feed(self, data: bytes) -> list[MessageEvent]:
        """Parse a chunk; return the events it completed."""
        return self._feed_text(self._decoder.decode(data))

    def _feed_text(self, text: str) -> list[MessageEvent]:
        if self._start_of_stream and text:
            # §9.2.6: "One leading U+FEFF BYTE ORDER MARK character must be ignored if any."
            if text[0] == "\ufeff":
                text = text[1:]
            self._start_of_stream = False
        if self._skip_lf and text:
            # A CR ended the previous chunk; an LF starting this one belongs to that CRLF.
            if text[0] == "\n":
                text = text[1:]
            self._skip_lf = False
        buffer = self._buffer + text
        events: list[MessageEvent] = []
        pos = 0
        for match in _LINE_END.finditer(buffer):
            if match.group() == "\r" and match.end() == len(buffer):
                self._skip_lf = True
            event = self._process_line(buffer[pos : match.start()])
            if event is not None:
                events.append(event)
            pos = match.end()
        self._buffer = buffer[pos:]
        if len(self._buffer) > MAX_LINE_CHARS:
            raise SSEProtocolError(f"line longer than {MAX_LINE_CHARS} characters")
        return events

    def _process_line(self, line: str) -> MessageEvent | None:
        if not line:
            if not self._data and self._id_buffer == self.last_event_id:
                self.keepalive_chars += 1  # a blank line that ends nothing: part of a keep-alive
            return self._dispatch()
        if line[0] == ":":
            self.comments += 1
            self.keepalive_chars += len(line) + 1
            return None
        name, colon, value = line.partition(":")
        if colon and value.startswith(" "):
            value = value[1:]
        if name == "event":
            self._event_type = value
        elif name == "data":
            self._data.append(value)
            self._data_chars += len(value) + 1
            if self._data_chars > MAX_EVENT_CHARS:
                raise SSEProtocolError(f"event data longer than {MAX_EVENT_CHARS} characters")
        elif name == "id":
            # §9.2.6: an id containing U+0000 NULL is ignored; an empty one resets the ID.
            if "\x00" not in value:
                self._id_buffer = value
        elif name == "retry":
            # §9.2.6: only ASCII digits set the reconnection time; anything else is ignored.
            if value and value.isascii() and value.isdigit():
                self.reconnection_time_ms = reconnection_time(value)
        # Any other field name is ignored.
        return None

    def _dispatch(self) -> MessageEvent | None:
        # §9.2.6 "dispatch the event": the last event ID is set even if no event fires.
        self.last_event_id = self._id_buffer
        if not self._data:
            self._reset_event()
            return None
        event = MessageEvent(self._event_type or "message", "\n".join(self._data), self.last_event_id)
        self._reset_event()
        return event

    def _reset_event(self) -> None:
        self._data = []
        self._data_chars = 0
        self._event_type = ""
