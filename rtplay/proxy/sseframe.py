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
        if b"\r" in buffer:
            blocks, block_start, pos = self._scan_lines(buffer)
        else:
            blocks, block_start, pos = self._scan_lf(buffer)
        self._buffer = buffer[block_start:]
        self._line_start = pos - block_start
        if len(self._buffer) > self.max_block:
            raise BlockTooLong(f"an event longer than {self.max_block} bytes")
        return blocks

    def _scan_lines(self, buffer: bytes) -> tuple[list[bytes], int, int]:
        """Any line ends: one regex match per line."""
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
        return blocks, block_start, pos

    def _scan_lf(self, buffer: bytes) -> tuple[list[bytes], int, int]:
        """LF only (what nearly every server sends): one ``find`` per event, in C."""
        blocks: list[bytes] = []
        block_start = 0
        pos = self._line_start
        size = len(buffer)
        while pos < size:
            if buffer[pos] == 0x0A:  # a blank line where a line starts
                end = pos + 1
            else:
                found = buffer.find(b"\n\n", pos)
                if found < 0:
                    last = buffer.rfind(b"\n", pos)
                    pos = pos if last < 0 else last + 1
                    break
                end = found + 2
            blocks.append(buffer[block_start:end])
            block_start = pos = end
        return blocks, block_start, pos

    def rest(self) -> bytes:
        """Bytes of an unfinished block (the stream ended mid-event: a browser discards it)."""
        return self._buffer


class BlockReader:
    """What the proxy needs from each block: does it dispatch an event, and the stream's last
    event ID and reconnection time after it.

    The same field rules as :class:`rtplay.model.eventsource.EventStreamParser` (WHATWG HTML
    §9.2.6: a leading BOM ignored, ``:`` comments, one space after the colon dropped, ``id``
    without NULL sets the ID — empty resets it —, ``retry`` only of ASCII digits, an event
    fires only with data), worked on bytes with splits in C instead of building every event:
    the proxy relays events, it does not consume them. A property test holds it to the parser.
    """

    def __init__(self) -> None:
        self.last_event_id = ""
        self.reconnection_time_ms: int | None = None
        self._start = True

    def read(self, block: bytes) -> bool:
        """Take one block (as :class:`EventFramer` cut it); True if it dispatches an event."""
        if self._start and block:
            block = block.removeprefix(b"\xef\xbb\xbf")
            self._start = False
        lines = _LINE_END.split(block) if b"\r" in block else block.split(b"\n")
        has_data = False
        new_id: bytes | None = None
        for line in lines:
            if not line or line[0] == 0x3A:  # blank, or a comment
                continue
            name, colon, value = line.partition(b":")
            if colon and value[:1] == b" ":
                value = value[1:]
            if name == b"data":
                has_data = True
            elif name == b"id":
                if b"\x00" not in value:
                    new_id = value
            elif name == b"retry" and value.isdigit():  # bytes.isdigit: ASCII digits only
                self.reconnection_time_ms = int(value)
        if new_id is not None:
            self.last_event_id = new_id.decode("utf-8", "replace")
        return has_data
