"""Cut a ``text/event-stream`` byte stream into raw event blocks. Pure.

The proxy forwards the upstream's bytes unchanged, one event at a time, so a fault can delay,
lose, duplicate or reorder *events* rather than TCP segments. An event ends at a blank line
(WHATWG HTML §9.2.6, "Parsing an event stream": lines end in CRLF, LF or CR; an empty line
dispatches). Each block goes on to :class:`rtplay.model.eventsource.EventStreamParser` for its
``id``, ``retry`` and whether it dispatched an event at all (a comment is a keep-alive).
"""

from __future__ import annotations

import re

from rtplay.model.eventsource import MAX_EVENT_CHARS

#: Longest block held while waiting for its blank line: the parser's own bound on one
#: event's data (bytes of UTF-8 are at most 4 per character, and fields add a few per line).
MAX_BLOCK_BYTES = MAX_EVENT_CHARS + (1 << 16)

_LINE_END = re.compile(rb"\r\n|\r|\n")


class BlockTooLong(Exception):
    """An event grew past :data:`MAX_BLOCK_BYTES` without ending; the stream is cut."""


class EventFramer:
    """Feed bytes; get back each complete block (its lines and the blank line ending it)."""

    def __init__(self, max_block: int = MAX_BLOCK_BYTES) -> None:
        self.max_block = max_block
        self._buffer = b""
        self._line_start = 0

    def feed(self, data: bytes) -> list[bytes]:
        """The blocks ``data`` completed, in order."""
        buffer = self._buffer + data
        blocks: list[bytes] = []
        block_start = 0
        pos = self._line_start
        while (match := _LINE_END.search(buffer, pos)) is not None:
            if match.group() == b"\r" and match.end() == len(buffer):
                break  # a CR at the end may be the first half of a CRLF
            blank = match.start() == pos
            pos = match.end()
            if blank:
                blocks.append(buffer[block_start:pos])
                block_start = pos
        self._buffer = buffer[block_start:]
        self._line_start = pos - block_start
        if len(self._buffer) > self.max_block:
            raise BlockTooLong(f"an event longer than {self.max_block} bytes")
        return blocks

    def rest(self) -> bytes:
        """Bytes of an unfinished block (the stream ended mid-event: a browser discards it)."""
        return self._buffer
