"""One WebSocket connection for the ws client: websockets' Sans-I/O protocol in an asyncio Protocol.

What one connection costs the client is what a crowd's reconnect wave costs: 10,000 clients
that retry at the same instant each open a connection (refused, during an outage), and the
faster one core makes those attempts, the truer the wave a crowd shows. websockets' asyncio
``connect()`` builds a connection object with its own locks, futures, message assembler and
timeouts around every attempt: a refused attempt took about 78 µs of CPU, against about 31 µs
for the bare ``loop.create_connection`` here; a crowd worker made ~13,000 attempts/s per core
through ``connect()``.

The protocol itself — the opening handshake and its checks, framing, masking, the close
handshake, answering pings, the message size limit — is websockets' own
(:class:`websockets.client.ClientProtocol`), unchanged; this module moves its bytes and
hands whole messages to the client. Errors are websockets' own too (``InvalidStatus``,
``InvalidMessage``, ``ConnectionClosed``…), so the client explains them as before.
"""

from __future__ import annotations

import asyncio
import collections
import functools
import ssl
from typing import cast

from websockets.client import ClientProtocol
from websockets.frames import Frame, Opcode
from websockets.http11 import Response
from websockets.protocol import State
from websockets.typing import BytesLike
from websockets.uri import parse_uri

from rtplay.protocol.envelope import ProtocolError

#: Whole messages waiting for the client before the connection stops reading (TCP then holds
#: the rest at the server). The client takes each at once; this bounds a burst, not a backlog.
MAX_QUEUED = 1024

#: Reading resumes once the client has taken the queue down to this many.
RESUME_AT = MAX_QUEUED // 4

#: Frames one message may come in (websockets' own asyncio client allows as many): the size
#: limit counts payload bytes, so empty continuation frames would never reach it.
MAX_FRAGMENTS = 4096

Message = str | bytes


class WsWire(asyncio.Protocol):
    """A client WebSocket connection: :meth:`open` it, then :meth:`recv`, :meth:`send`, :meth:`close`."""

    def __init__(self, url: str, max_size: int, close_timeout: float) -> None:
        self.url = url
        self.max_size = max_size
        self.protocol: ClientProtocol
        """websockets' protocol state, made once the TCP connection is (a refused attempt,
        the common one in an outage, never pays for it)."""
        self.close_timeout = close_timeout
        self.loop = asyncio.get_running_loop()
        self.transport: asyncio.Transport | None = None
        self.opened: asyncio.Future[None] = self.loop.create_future()
        """Done when the opening handshake has succeeded; its exception when it failed."""
        self.ended: asyncio.Future[None] = self.loop.create_future()
        """Done when the TCP connection is gone."""
        self.messages: collections.deque[Message] = collections.deque()
        self.waiter: asyncio.Future[None] | None = None
        self.paused = False
        self._fragments: list[BytesLike] = []
        self._text = False
        self._close_timer: asyncio.TimerHandle | None = None
        self._peer_ended = False
        """The server has ended its side of the TCP stream (``eof_received``)."""
        self.failure: ProtocolError | None = None
        """What made this side fail the connection (a text message not UTF-8, a message in more
        than :data:`MAX_FRAGMENTS` fragments): raised by :meth:`recv` after the messages before it."""

    # --- what the client calls --------------------------------------------------------------

    @classmethod
    async def open(cls, url: str, *, max_size: int, close_timeout: float) -> WsWire:
        """Connect and complete the opening handshake (the caller bounds how long it may take).

        Raises OSError when the TCP connection fails, websockets' ``InvalidHandshake`` when the
        server refuses or garbles the handshake.
        """
        wire = cls(url, max_size, close_timeout)
        host, port, secure = endpoint(url.partition("?")[0])
        try:
            await wire.loop.create_connection(lambda: wire, host, port, ssl=tls_context() if secure else None)
            await wire.opened
        except BaseException:
            wire.abort()
            del wire  # the traceback holds this frame: don't let it hold the connection too
            raise
        return wire

    async def recv(self) -> Message:
        """The next whole message; ``ConnectionClosed`` once the connection has ended. Safe to
        cancel: a message is never lost to a cancelled ``recv``."""
        while not self.messages:
            if self.failure is not None:
                raise self.failure
            if self.ended.done() or self.protocol.state is State.CLOSED:
                raise self.protocol.close_exc
            self.waiter = self.loop.create_future()
            try:
                await self.waiter
            finally:
                self.waiter = None
        message = self.messages.popleft()
        if self.paused and len(self.messages) <= RESUME_AT and self.transport is not None:
            self.paused = False
            self.transport.resume_reading()
        return message

    async def send(self, text: str) -> None:
        """Send one text message; ``ConnectionClosed`` once the connection is closing (after
        it has closed, so that the error says how)."""
        if self.protocol.state is not State.OPEN:
            await asyncio.wait({self.ended})  # at most close_timeout: the close timer aborts
            raise self.protocol.close_exc
        self.protocol.send_text(text.encode())
        self._flush()

    async def close(self) -> None:
        """The closing handshake, waiting at most ``close_timeout`` for the server's side of it;
        then the TCP connection is dropped."""
        if self.protocol.state is State.OPEN:
            self.protocol.send_close(1000)
            self._flush()
        if self.paused and self.transport is not None:
            self.paused = False
            self.transport.resume_reading()  # the server's close frame must be read to end it
        try:
            if not self.ended.done():
                await asyncio.wait({self.ended}, timeout=self.close_timeout)
        finally:
            self.abort()

    def abort(self) -> None:
        """Drop the TCP connection at once, without a closing handshake."""
        if self.transport is not None:
            self.transport.abort()

    # --- asyncio.Protocol ---------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass, but one in kind
        self.protocol = ClientProtocol(parse_uri(self.url), max_size=self.max_size)
        self.protocol.send_request(self.protocol.connect())
        self._flush()

    def data_received(self, data: bytes) -> None:
        self.protocol.receive_data(data)
        self._take_events()

    def eof_received(self) -> bool | None:
        self.protocol.receive_eof()
        # The server has ended its side: returning None closes the socket at once, and that
        # sends our end of the stream. A half-close before it (the protocol asks for one)
        # would be one more system call per connection when an outage ends thousands.
        self._peer_ended = True
        self._take_events()
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None  # gone: nothing more is written to it, no close timer is set
        if not self._peer_ended:  # else eof_received has told the protocol, and taken its events
            self.protocol.receive_eof()  # the protocol's state becomes CLOSED
            self._take_events()
        if self._close_timer is not None:
            self._close_timer.cancel()
        if not self.opened.done():
            why = self.protocol.handshake_exc or exc or ConnectionResetError("connection closed during the opening handshake")
            self._fail_open(why)
        if not self.ended.done():
            self.ended.set_result(None)
        self._wake()

    # --- inside ----------------------------------------------------------------------------

    def _take_events(self) -> None:
        for event in self.protocol.events_received():
            if isinstance(event, Frame):
                self._take_frame(event)
            elif isinstance(event, Response) and not self.opened.done():
                if self.protocol.handshake_exc is None:
                    self.opened.set_result(None)
                else:
                    self._fail_open(self.protocol.handshake_exc)
        if not self.opened.done() and self.protocol.handshake_exc is not None:
            self._fail_open(self.protocol.handshake_exc)  # no answer at all: garbage or EOF
        self._flush()
        if self.protocol.close_expected() and self._close_timer is None and self.transport is not None:
            # The server closes TCP after the closing handshake; if it does not, we do.
            self._close_timer = self.loop.call_later(self.close_timeout, self.transport.abort)

    def _take_frame(self, frame: Frame) -> None:
        if self.failure is not None:
            return  # parsed from the same read as the message that failed the connection
        if frame.opcode is Opcode.TEXT or frame.opcode is Opcode.BINARY:
            self._text = frame.opcode is Opcode.TEXT
            self._fragments = [frame.data]
        elif frame.opcode is Opcode.CONT:
            if len(self._fragments) >= MAX_FRAGMENTS:  # empty continuations count no bytes
                self.protocol.fail(1009, "too many fragments")
                self.failure = ProtocolError(f"a message in more than {MAX_FRAGMENTS} fragments")
                self._fragments = []
                self._wake()
                return
            self._fragments.append(frame.data)
        else:
            return  # ping (the protocol answered it), pong, close (the protocol handles it)
        if not frame.fin:
            return
        data, self._fragments = b"".join(self._fragments), []
        if self._text:
            try:
                message: Message = data.decode()
            except UnicodeDecodeError as exc:
                self.protocol.fail(1007, "invalid UTF-8 in a text message")
                self.failure = ProtocolError(f"text message is not UTF-8: {exc.reason} at byte {exc.start}")
                self._wake()
                return
        else:
            message = data
        self.messages.append(message)
        # Closing, it reads on: the server's close frame comes after all it sent before.
        if len(self.messages) >= MAX_QUEUED and not self.paused and self.transport is not None and self.protocol.state is State.OPEN:
            self.paused = True
            self.transport.pause_reading()
        self._wake()

    def _flush(self) -> None:
        if self.transport is None:
            return
        for data in self.protocol.data_to_send():
            if data:
                self.transport.write(data)
            elif self._peer_ended:
                pass  # the transport is about to close: that ends our side (see eof_received)
            elif self.transport.can_write_eof():
                self.transport.write_eof()  # the protocol's end of stream: half-close
            else:
                self.transport.close()

    def _fail_open(self, exc: BaseException) -> None:
        self.opened.set_exception(exc)
        self.opened.exception()  # marked retrieved: open() raises it, or nobody waits any more

    def _wake(self) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(None)


@functools.lru_cache(maxsize=64)
def endpoint(url: str) -> tuple[str, int, bool]:
    """(host, port, secure) of a ``ws://`` or ``wss://`` URL without its query (the same for
    every attempt of a client: parsed once)."""
    uri = parse_uri(url)
    return uri.host, uri.port, uri.secure


@functools.cache
def tls_context() -> ssl.SSLContext:
    """The default client TLS context, made once."""
    return ssl.create_default_context()
