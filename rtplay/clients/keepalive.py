"""A lean keep-alive HTTP/1.1 GET: one connection, one request in flight, for the long-poll.

A long-poll client makes one request per answer, so a crowd of them at 2 msg/s makes two
requests per client per second, and what a request costs the client is what a crowd costs.
Through aiohttp's ``ClientSession`` a request built a URL, a request and a response object,
a header multidict, a payload stream, trace signals and a timer of its own: that machinery
was most of a long-poll crowd worker's CPU. Here a request is one string written to the
connection, its answer is read by the pure :class:`~rtplay.model.http1.ResponseReader` in an
asyncio Protocol, and the read timeout is a deadline that one timer per connection checks
(moved on by every request and every read, as aiohttp's ``sock_read`` is).

The behaviour a long-poll relies on is aiohttp's, kept: a connection reused while it stays
open; a request whose connection closes before any byte of its answer is sent once more on a
new connection if it went out on a reused one, as browsers do (RFC 9112 §9.3.1: GET is idempotent), and the
caller is told (``on_resend``); every other failure ends that request with a clear error.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Callable
from typing import cast
from urllib.parse import urlsplit

from rtplay.model.http1 import Answer, ResponseReader
from rtplay.protocol.envelope import ProtocolError


class ServerClosedError(ConnectionError):
    """The server closed (or reset) the connection before its answer was complete."""


class Unanswered(ServerClosedError):
    """The connection ended before any byte of the answer: the request may be sent again."""


class ConnectTimeout(TimeoutError):
    """No connection within the connect timeout."""


class ReadTimeout(TimeoutError):
    """No byte of the answer within the read timeout."""


class _Wire(asyncio.Protocol):
    """One connection: writes a request, hands back its answer (or why there is none)."""

    def __init__(self, loop: asyncio.AbstractEventLoop, read_timeout: float) -> None:
        self.loop = loop
        self.read_timeout = read_timeout
        self.transport: asyncio.Transport | None = None
        self.reader = ResponseReader()
        self.waiter: asyncio.Future[Answer] | None = None
        self.closed = False
        self.deadline = 0.0
        self.timer: asyncio.TimerHandle | None = None
        self.answered = 0
        """Answers read on this connection: once one has, the connection is proven (reused)."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # a TCP transport (uvloop's is no subclass)

    def send(self, request: bytes) -> asyncio.Future[Answer]:
        """Write ``request``; the future of its answer."""
        assert self.transport is not None and not self.closed
        self.waiter = waiter = self.loop.create_future()
        self.deadline = self.loop.time() + self.read_timeout
        if self.timer is None:
            self.timer = self.loop.call_at(self.deadline, self._check_deadline)
        self.transport.write(request)
        return waiter

    def data_received(self, data: bytes) -> None:
        waiter = self.waiter
        if waiter is None or waiter.done():
            self.fail(ProtocolError(f"the server sent {len(data)} bytes while no request was pending"))
            return
        self.deadline = self.loop.time() + self.read_timeout
        try:
            answer = self.reader.feed(data)
        except ProtocolError as exc:
            self.fail(exc)
            return
        if answer is not None:
            self.waiter = None
            self.answered += 1
            waiter.set_result(answer)
            if not answer.keep_alive:
                self.abort()

    def eof_received(self) -> bool | None:
        self.closed = True  # the peer is done: no next request on this connection
        try:
            answer = self.reader.feed_eof()  # a body that runs to the end of the connection
        except ProtocolError as exc:  # the answer cut short: the connection's fault, not its content
            self.fail(ServerClosedError(str(exc)))
            return None
        waiter, self.waiter = self.waiter, None
        if answer is not None and waiter is not None and not waiter.done():
            waiter.set_result(answer)
        elif waiter is not None and not waiter.done():
            waiter.set_exception(Unanswered("server closed the connection"))
        return None  # the transport closes itself

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        waiter, self.waiter = self.waiter, None
        if waiter is None or waiter.done():
            return
        if self.reader.started:
            error: ServerClosedError = ServerClosedError("connection closed in the middle of the answer")
        else:
            error = Unanswered("server closed the connection")
        error.__cause__ = exc
        waiter.set_exception(error)

    def fail(self, exc: Exception) -> None:
        """End the pending request with ``exc`` and drop the connection (it cannot be reused)."""
        waiter, self.waiter = self.waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_exception(exc)
        self.abort()

    def abort(self) -> None:
        """Drop the connection now."""
        self.closed = True
        if self.transport is not None:
            self.transport.abort()

    def _check_deadline(self) -> None:
        self.timer = None
        if self.waiter is None or self.closed:
            return  # the next request arms it again
        if self.loop.time() < self.deadline:
            self.timer = self.loop.call_at(self.deadline, self._check_deadline)
            return
        self.fail(ReadTimeout(f"no answer for {self.read_timeout:g} s"))


class KeepAlive:
    """GET requests to one origin over one kept-alive HTTP/1.1 connection, one at a time.

    ``read_timeout`` bounds the wait for each piece of an answer; ``on_resend`` is called as a
    request goes out a second time after its connection closed unanswered.
    """

    def __init__(
        self, base_url: str, *, read_timeout: float, connect_timeout: float, on_resend: Callable[[], None]
    ) -> None:
        url = urlsplit(base_url)
        if url.scheme not in ("http", "https") or not url.hostname:
            raise ValueError(f"not an http:// or https:// URL: {base_url!r}")
        self.host = url.hostname
        self.port = url.port or (443 if url.scheme == "https" else 80)
        self.path = url.path.rstrip("/")
        self.read_timeout = read_timeout
        self.connect_timeout = connect_timeout
        self.on_resend = on_resend
        self._ssl = ssl.create_default_context() if url.scheme == "https" else None
        self._fields = f"Host: {url.netloc}\r\nAccept: */*\r\n\r\n"
        self._wire: _Wire | None = None

    async def get(self, target: str) -> Answer:
        """The answer to ``GET {path}{target}``; raises on refusal, timeout, closure or a malformed answer."""
        request = f"GET {self.path}{target} HTTP/1.1\r\n{self._fields}".encode("ascii")
        resent = False
        while True:
            wire = await self._open()
            proven = wire.answered > 0
            answer = wire.send(request)
            if resent:
                self.on_resend()
            try:
                return await answer
            except Unanswered:
                # RFC 9112 §9.3.1: an idempotent request may be sent again, once; as Chromium
                # (HttpNetworkTransaction::ShouldResendRequest), only when it went out on a
                # reused connection (a keep-alive the server may have closed meanwhile): a new
                # connection closed unanswered is the server's answer, not a race.
                if resent or not proven:
                    raise
                resent = True
            except asyncio.CancelledError:
                wire.abort()  # its answer would arrive with no request pending
                raise

    async def _open(self) -> _Wire:
        wire = self._wire
        if wire is not None and not wire.closed:
            return wire
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(self.connect_timeout):
                _, wire = await loop.create_connection(
                    lambda: _Wire(loop, self.read_timeout), self.host, self.port, ssl=self._ssl
                )
        except TimeoutError:
            raise ConnectTimeout(f"no connection within {self.connect_timeout:g} s") from None
        self._wire = wire
        return wire

    def close(self) -> None:
        """Drop the connection (a request in flight ends with :class:`ServerClosedError`)."""
        if self._wire is not None:
            self._wire.abort()
            self._wire = None
