"""RFC 6455 §5.1 for the server side: every client-to-server frame must be masked; and no
client may flood the server with frames.

aiohttp's frame reader unmasks what is masked and accepts what is not, and handles each frame
in Python, however small: a stream of empty continuation frames (RFC 6455 §5.4 sets no limit
on fragments) kept one core busy and every client's latency with it. :class:`MaskCheck` walks
the frame headers of the client's byte stream (pure: fed bytes and ``now``, no I/O, payloads
skipped without copying) and :func:`masked_frames_only` puts it in front of one connection's
protocol (:class:`GuardedStream`), so an unmasked frame fails the connection with close code
1002, and more than :data:`MAX_FRAMES_PER_MESSAGE` fragments of one message or
:data:`MAX_FRAMES_PER_S` frames in a second with 1008 (policy violation, §7.4.1), before
aiohttp sees them. Sitting there, the guard also counts the client's bytes (the heartbeat's sign of life)
and follows the transport's flow control for the envelopes the endpoint writes as its own
:func:`text_frames`, a batch per write.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import cast

from aiohttp import WSCloseCode, web

log = logging.getLogger(__name__)

#: Longest frame header: 2 bytes, 8 of extended length, 4 of mask (RFC 6455 §5.2).
MAX_HEADER_BYTES = 14

UNMASKED = "unmasked client frame (RFC 6455 §5.1)"

#: Frames one client message may be split into. Our clients and browsers send each message
#: as one frame; a library fragmenting a large message uses a handful. 64 is plenty, and caps
#: what a flood of empty continuation frames gets aiohttp to do for one message.
MAX_FRAMES_PER_MESSAGE = 64

#: Frames a connection may send per second (any opcode). A client pings every few seconds;
#: one that measures round trips back to back on loopback (benchmarks/perf.py P1) sends one
#: frame per ~40 µs, 25,000 a second. 50,000 allows that while a flood (hundreds of thousands
#: of frames a second; empty continuations are cut sooner, by MAX_FRAMES_PER_MESSAGE) is cut
#: within its first second.
MAX_FRAMES_PER_S = 50_000

#: Opcodes (RFC 6455 §5.2): continuation, then the data frames that start a message.
CONTINUATION = 0x0
DATA_OPCODES = frozenset({0x1, 0x2})


class MaskCheck:
    """Says whether a client's frame stream so far has only masked frames, in bounded numbers."""

    def __init__(self) -> None:
        self._head = bytearray()
        self._skip = 0
        """Payload bytes of the current frame still to pass over."""
        self.failed = False
        self.reason = ""
        """Why the stream failed: :data:`UNMASKED`, or the frame bound it broke."""
        self.code = 0
        """The close code for :attr:`reason`: 1002 (protocol error) or 1008 (policy)."""
        self._fragments = 0
        """Frames of the message in progress (0 between messages)."""
        self._now = 0.0
        self._window = 0.0
        """When the current one-second frame-counting window began."""
        self._in_window = 0

    def feed(self, data: bytes, now: float) -> bool:
        """Take the next bytes of the stream, received at ``now`` (seconds); False once an
        unmasked frame was seen or a frame bound was broken."""
        self._now = now
        i, n = 0, len(data)
        while i < n and not self.failed:
            if self._skip:
                step = min(self._skip, n - i)
                self._skip -= step
                i += step
                continue
            if not self._head and n - i >= 2:
                end = self._whole_header(data, i)
                if self.failed:
                    break
                if end:
                    i = end
                    continue
            # A header split across reads: gather it a byte at a time.
            self._head.append(data[i])
            i += 1
            self._frame_header()
        return not self.failed

    def _whole_header(self, data: bytes, i: int) -> int:
        """Read the frame header at ``data[i:]`` in place when all of it is there (the usual
        case: one read holds whole frames); where the next frame starts, or 0 when it is not
        all there. The same rules as :meth:`_frame_header`, without a copy per byte."""
        second = data[i + 1]
        if not second & 0x80:
            self._fail(UNMASKED, WSCloseCode.PROTOCOL_ERROR)
            return 0
        short = second & 0x7F
        extra = 2 if short == 126 else 8 if short == 127 else 0
        end = i + 2 + extra + 4
        if end > len(data):
            return 0
        self._skip = int.from_bytes(data[i + 2 : i + 2 + extra], "big") if extra else short
        self._count(data[i])
        return end

    def _frame_header(self) -> None:
        head = self._head
        if len(head) < 2:
            return
        if not head[1] & 0x80:
            self._fail(UNMASKED, WSCloseCode.PROTOCOL_ERROR)
            return
        short = head[1] & 0x7F
        extra = 2 if short == 126 else 8 if short == 127 else 0
        if len(head) < 2 + extra + 4:
            return
        self._skip = int.from_bytes(head[2 : 2 + extra], "big") if extra else short
        self._count(head[0])
        head.clear()

    def _count(self, first: int) -> None:
        """Count one whole frame header whose first byte is ``first`` against the bounds."""
        if self._now - self._window >= 1.0:
            self._window, self._in_window = self._now, 0
        self._in_window += 1
        if self._in_window > MAX_FRAMES_PER_S:
            self._fail(f"more than {MAX_FRAMES_PER_S} frames in a second", WSCloseCode.POLICY_VIOLATION)
            return
        opcode, fin = first & 0x0F, first & 0x80
        if opcode in DATA_OPCODES or (opcode == CONTINUATION and self._fragments):
            self._fragments = 0 if fin else self._fragments + 1
            if self._fragments >= MAX_FRAMES_PER_MESSAGE:
                self._fail(f"a message in more than {MAX_FRAMES_PER_MESSAGE} frames", WSCloseCode.POLICY_VIOLATION)

    def _fail(self, reason: str, code: int) -> None:
        self.failed, self.reason, self.code = True, reason, code


def close_frame(code: int, reason: str) -> bytes:
    """A server-to-client close frame (RFC 6455 §5.5.1) with ``code`` and ``reason``."""
    payload = code.to_bytes(2, "big") + reason.encode()[:123]
    return bytes([0x88, len(payload)]) + payload


def text_frames(texts: list[str]) -> bytes:
    """Unmasked, unfragmented text frames (RFC 6455 §5.2), one per text, as a server sends them:
    a batch of envelopes in one write (aiohttp's ``send_str`` makes a write, a syscall, each)."""
    out = bytearray()
    for text in texts:
        payload = text.encode()
        size = len(payload)
        if size < 126:
            out += bytes((0x81, size))
        elif size < 65536:
            out += b"\x81\x7e" + size.to_bytes(2, "big")
        else:
            out += b"\x81\x7f" + size.to_bytes(8, "big")
        out += payload
    return bytes(out)


class GuardedStream(asyncio.Protocol):
    """Sits between the socket and aiohttp's protocol: every byte passes a :class:`MaskCheck`
    first (an unmasked frame gets a 1002 close frame, a frame flood a 1008 one, and either
    ends the connection); it counts what
    the client sent (the heartbeat's sign of life) and follows the transport's flow control,
    so frames written straight to the transport can wait for it to drain."""

    def __init__(self, inner: asyncio.Protocol, transport: asyncio.Transport, clock: Callable[[], float]) -> None:
        self._inner = inner
        self.transport = transport
        self._clock = clock
        self._check = MaskCheck()
        self.closed_for = ""
        """Why the guard closed the connection ("" while it has not)."""
        self.received = 0
        """Bytes the client has sent so far."""
        self.paused = False
        """True while the transport's buffer is over its high-water mark."""
        self._drain: asyncio.Future[None] | None = None

    def data_received(self, data: bytes) -> None:
        self.received += len(data)
        if self._check.failed:
            return
        if self._check.feed(data, self._clock()):
            self._inner.data_received(data)
            return
        check = self._check
        log.info("ws: %s; closing with %d", check.reason, check.code)
        self.closed_for = check.reason
        self.transport.write(close_frame(check.code, check.reason))
        self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self._wake()  # a waiting writer's next write finds the transport closing
        self._inner.connection_lost(exc)

    def eof_received(self) -> bool | None:
        return self._inner.eof_received()

    def pause_writing(self) -> None:
        self.paused = True
        self._inner.pause_writing()

    def resume_writing(self) -> None:
        self.paused = False
        self._wake()
        self._inner.resume_writing()

    def _wake(self) -> None:
        drain, self._drain = self._drain, None
        if drain is not None and not drain.done():
            drain.set_result(None)

    def write(self, data: bytes) -> None:
        """Write ``data`` (then wait for :meth:`drained` while :attr:`paused`)."""
        if self.transport.is_closing():
            raise ConnectionResetError("ws connection is closing")
        self.transport.write(data)

    async def drained(self) -> None:
        """Until the transport's buffer is back under its high-water mark."""
        if self.paused:
            if self._drain is None:
                self._drain = asyncio.get_running_loop().create_future()
            await asyncio.shield(self._drain)  # shared by every waiter, never cancelled by one


def masked_frames_only(request: web.Request) -> GuardedStream:
    """Before ``WebSocketResponse.prepare(request)``: check the mask of every frame after it.

    The check sits on the transport (``set_protocol``, public asyncio API), in front of
    aiohttp's own reader. Bytes that came in the very packet of the upgrade request were
    read before it and are not checked.
    """
    transport = request.transport
    if transport is None:
        raise ConnectionResetError("the WebSocket peer left before the handshake")
    # asyncio's and uvloop's transports both offer set_protocol
    clock = asyncio.get_running_loop().time
    # aiohttp's protocol on a TCP transport
    guarded = GuardedStream(cast(asyncio.Protocol, transport.get_protocol()), transport, clock)
    transport.set_protocol(guarded)
    return guarded
