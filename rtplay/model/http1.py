"""An HTTP/1.1 response reader for a client that sends one request at a time (RFC 9112). No I/O.

Feed it the bytes of a connection as they arrive, in chunks of any size; it hands back each
complete :class:`Answer`. It reads what a keep-alive GET needs: the status line, the header
fields, and a body delimited by ``Content-Length`` or by the end of the connection. Any input
either parses or raises :class:`~rtplay.protocol.envelope.ProtocolError` with a clear reason —
never anything else — and nothing it holds grows past its named bound.

It reads the chunked transfer coding (RFC 9112 §7.1) too, for a proxy in front of the
server that re-frames answers; no other transfer coding and no content coding (the client
sends no ``TE`` and no ``Accept-Encoding``, so an encoded answer is one it never asked for).
"""

from __future__ import annotations

from dataclasses import dataclass

from rtplay.protocol.envelope import ProtocolError

#: Longest status line plus header section accepted. h11's DEFAULT_MAX_INCOMPLETE_EVENT_SIZE
#: (16 KiB): rtplay's server sends ~400 bytes; a head past this is a broken or hostile peer.
MAX_HEAD_BYTES = 16 * 1024

#: Largest body accepted. A long-poll that resumes from far back gets the server's whole
#: replay buffer at once: 10,000 envelopes are ~780 KB at the default message size, and 64 MiB
#: leaves room for a buffer raised tenfold with large messages, while still refusing a peer
#: that would stream forever.
MAX_BODY_BYTES = 64 * 1024 * 1024

_HEAD_END = b"\r\n\r\n"

#: Digits of the longest Content-Length read as a number (beyond, a length no bound allows).
_MAX_LENGTH_DIGITS = 18

#: Longest chunk-size line (size, extensions) or trailer section accepted: a size fits in 16
#: hex digits, and rtplay's server sends neither extensions nor trailers.
MAX_CHUNK_LINE_BYTES = 4096

#: RFC 9110 §6.4.1: these statuses never carry content, whatever the header fields say.
_NO_BODY = frozenset({204, 304})


@dataclass(frozen=True, slots=True)
class Answer:
    """One complete response."""

    status: int
    """The status code (RFC 9110 §15)."""
    head_bytes: int
    """Bytes of the status line and header section as they were on the wire, blank line included."""
    body: bytes
    """The content (empty for 204 and 304)."""
    retry_after: str | None
    """The ``Retry-After`` field's value (RFC 9110 §10.2.3), if the server sent one."""
    keep_alive: bool
    """Whether the connection may carry the next request (RFC 9112 §9.3)."""


@dataclass(frozen=True, slots=True)
class _Head:
    status: int
    size: int
    length: int | None
    """Content-Length; None for a body delimited by the close or by chunks."""
    retry_after: str | None
    keep_alive: bool
    chunked: bool = False


# Where a chunked body stands (RFC 9112 §7.1): a chunk-size line next, a chunk's data, the
# CRLF after it, or the trailer section after the last chunk.
_SIZE, _DATA, _DATA_END, _TRAILERS = range(4)


class ResponseReader:
    """The answers on one connection, parsed from its bytes (one request in flight at a time)."""

    def __init__(self, max_head: int = MAX_HEAD_BYTES, max_body: int = MAX_BODY_BYTES) -> None:
        self.max_head = max_head
        self.max_body = max_body
        self._buffer = bytearray()
        self._head: _Head | None = None
        self._body = bytearray()  # a chunked answer's content, decoded so far
        self._chunk_state = _SIZE
        self._chunk_left = 0

    @property
    def started(self) -> bool:
        """Whether any byte of the current answer has arrived."""
        return bool(self._buffer) or self._head is not None

    def feed(self, data: bytes) -> Answer | None:
        """Take the connection's next bytes; the answer once it is complete, else None."""
        buffer = self._buffer
        buffer += data
        while self._head is None:
            end = buffer.find(_HEAD_END)
            if end < 0:
                if len(buffer) > self.max_head:
                    raise ProtocolError(f"response head longer than {self.max_head} bytes")
                return None
            if end + len(_HEAD_END) > self.max_head:
                raise ProtocolError(f"response head longer than {self.max_head} bytes")
            head = _parse_head(bytes(buffer[:end]), end + len(_HEAD_END))
            del buffer[: head.size]
            if 100 <= head.status < 200:  # RFC 9110 §15.2: interim, the final answer follows
                continue
            if head.length is not None and head.length > self.max_body:
                raise ProtocolError(f"response body of {head.length} bytes, more than {self.max_body}")
            self._head = head
        if self._head.chunked:
            return self._feed_chunked()
        if self._head.length is None:  # delimited by the end of the connection
            if len(buffer) > self.max_body:
                raise ProtocolError(f"response body larger than {self.max_body} bytes")
            return None
        if len(buffer) < self._head.length:
            return None
        if len(buffer) > self._head.length:
            # One request at a time: nothing may follow an answer before the next request.
            raise ProtocolError(f"{len(buffer) - self._head.length} unexpected bytes after the response")
        return self._complete(bytes(buffer))

    def feed_eof(self) -> Answer | None:
        """The peer closed the connection: the answer a close completes (its body runs to the
        end), None when no byte of an answer had arrived, :class:`ProtocolError` when it is cut short."""
        head = self._head
        if head is not None and head.length is None and not head.chunked:
            return self._complete(bytes(self._buffer))
        if not self.started:
            return None
        if head is None:
            raise ProtocolError("connection closed in the middle of the response head")
        if head.chunked:
            raise ProtocolError(f"connection closed after {len(self._body)} bytes of a chunked response")
        raise ProtocolError(f"connection closed after {len(self._buffer)} of the response's {head.length} body bytes")

    def _feed_chunked(self) -> Answer | None:
        """Decode what the buffer holds of a chunked body; the answer after its trailer section."""
        buffer = self._buffer
        while buffer:
            if self._chunk_state == _DATA:
                take = min(self._chunk_left, len(buffer))
                self._body += buffer[:take]
                del buffer[:take]
                self._chunk_left -= take
                if self._chunk_left:
                    return None
                self._chunk_state = _DATA_END
                continue
            end = buffer.find(b"\r\n")
            if end < 0:
                if len(buffer) > MAX_CHUNK_LINE_BYTES:
                    raise ProtocolError(f"chunk line longer than {MAX_CHUNK_LINE_BYTES} bytes")
                return None
            line = bytes(buffer[:end])
            del buffer[: end + 2]
            if self._chunk_state == _DATA_END:
                if line:
                    raise ProtocolError("chunk data longer than its chunk-size")
                self._chunk_state = _SIZE
            elif self._chunk_state == _TRAILERS:
                if not line:  # the blank line that ends the trailer section
                    if buffer:
                        raise ProtocolError(f"{len(buffer)} unexpected bytes after the response")
                    return self._complete(bytes(self._body))
                self._chunk_left += len(line) + 2  # trailer fields are read past, within a bound
                if self._chunk_left > MAX_CHUNK_LINE_BYTES:
                    raise ProtocolError(f"trailer section longer than {MAX_CHUNK_LINE_BYTES} bytes")
            else:
                size = _chunk_size(line)
                if size == 0:
                    self._chunk_state, self._chunk_left = _TRAILERS, 0
                elif len(self._body) + size > self.max_body:
                    raise ProtocolError(f"response body larger than {self.max_body} bytes")
                else:
                    self._chunk_state, self._chunk_left = _DATA, size
        return None

    def _complete(self, body: bytes) -> Answer:
        head = self._head
        assert head is not None
        self._buffer, self._head, self._body = bytearray(), None, bytearray()
        self._chunk_state, self._chunk_left = _SIZE, 0
        keep_alive = head.keep_alive and (head.length is not None or head.chunked)
        return Answer(head.status, head.size, body, head.retry_after, keep_alive)


def _parse_head(head: bytes, size: int) -> _Head:
    """The status line and header fields (``head``, without the blank line); ``size`` with it."""
    lines = head.split(b"\r\n")
    status_line = lines[0]
    version, _, rest = status_line.partition(b" ")
    code = rest[:3]
    # RFC 9112 §4: status-line = HTTP-version SP status-code SP [ reason-phrase ]
    if version not in (b"HTTP/1.1", b"HTTP/1.0") or not (code.isdigit() and len(code) == 3) or rest[3:4] not in (b" ", b""):
        raise ProtocolError(f"not an HTTP/1.1 status line: {status_line[:60]!r}")
    status = int(code)
    length: int | None = None
    retry_after: str | None = None
    keep_alive = version == b"HTTP/1.1"
    chunked = False
    for line in lines[1:]:
        name, colon, value = line.partition(b":")
        # RFC 9112 §5.1: no whitespace between a field name and its colon; §5.2: no line folding.
        if not colon or not name or name != name.strip() or name[:1] in (b" ", b"\t"):
            raise ProtocolError(f"malformed header field: {line[:60]!r}")
        name = name.lower()
        value = value.strip(b" \t")
        if name == b"content-length":
            length = _content_length(value, length)
        elif name == b"connection":
            tokens = {t.strip() for t in value.lower().split(b",")}
            keep_alive = b"keep-alive" in tokens if version == b"HTTP/1.0" else b"close" not in tokens
        elif name == b"transfer-encoding":
            # RFC 9112 §6.1: chunked must be the final coding; no other coding was asked for.
            if value.lower() != b"chunked" or chunked:
                raise ProtocolError(f"unsupported Transfer-Encoding: {value[:40]!r}")
            chunked = True
        elif name == b"content-encoding" and value.lower() != b"identity":
            raise ProtocolError(f"unrequested Content-Encoding: {value[:40]!r}")
        elif name == b"retry-after":
            retry_after = value.decode("latin-1")
    if chunked and length is not None:
        # RFC 9112 §6.3 (3): both framings at once may be response splitting: an error.
        raise ProtocolError("response has both Transfer-Encoding and Content-Length")
    if status in _NO_BODY or 100 <= status < 200:
        length, chunked = 0, False
    return _Head(status, size, length, retry_after, keep_alive, chunked)


def _content_length(value: bytes, earlier: int | None) -> int:
    """RFC 9110 §8.6: one decimal length; repeated only with the same value."""
    if not value.isdigit() or len(value) > _MAX_LENGTH_DIGITS:
        raise ProtocolError(f"bad Content-Length: {value[:40]!r}")
    length = int(value)
    if earlier is not None and earlier != length:
        raise ProtocolError(f"conflicting Content-Length values: {earlier} and {length}")
    return length


def _chunk_size(line: bytes) -> int:
    """RFC 9112 §7.1: chunk-size (hex) with optional ``;`` extensions, which are ignored."""
    digits = line.partition(b";")[0].rstrip(b" \t")
    if not digits or len(digits) > 16 or digits.strip(b"0123456789abcdefABCDEF"):
        raise ProtocolError(f"bad chunk-size line: {line[:40]!r}")
    return int(digits, 16)
