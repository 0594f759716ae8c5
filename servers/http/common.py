"""What the aiohttp endpoints share: the app key of the context, request limits, stream
helpers (send buffer, write deadline, last words, abort) and the mapping of a bad cursor to 400.
"""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import Awaitable, Callable
from socket import SO_SNDBUF, SOL_SOCKET

from aiohttp import web

from rtplay.runtime.health import SLOW_CONSUMER
from servers.core.context import HOLD_STEP_S, ServerContext
from servers.core.cursor import parse_cursor
from servers.core.pubsub import Subscription

#: Largest request body accepted (control API, WebRTC offers). An SDP offer is a few KiB.
MAX_REQUEST_BYTES = 64 * 1024

#: Kernel send buffer of a streaming connection (SSE, WebSocket). Linux autotunes it up to
#: 4 MiB, which a reader that stopped reading fills before anything pushes back on the writer
#: (~40 s at 1000 msg/s): 256 KiB is still seconds of stream for a live consumer, and makes
#: a stuck one block the writer, so the slow-consumer deadline applies, within seconds.
STREAM_SNDBUF_BYTES = 256 * 1024

#: How long a slow consumer gets to read the stream's last words (the reason it is cut)
#: before its connection is aborted: bounded, so a peer that reads nothing costs nothing.
GOODBYE_TIMEOUT_S = 1.0

CTX: web.AppKey[ServerContext] = web.AppKey("rtplay", ServerContext)


def bad_request(message: str) -> web.Response:
    """A 400 whose JSON body says what was wrong."""
    return web.json_response({"error": message}, status=400)


def cursor_of(raw: str | None, name: str = "since") -> int:
    """:func:`~servers.core.cursor.parse_cursor` for a handler: a bad cursor is a 400."""
    try:
        return parse_cursor(raw, name)
    except ValueError as exc:
        raise web.HTTPBadRequest(text=json.dumps({"error": str(exc)}), content_type="application/json") from None


def bound_send_buffer(request: web.Request) -> None:
    """Cap the kernel's send buffer of this (streaming) connection: see STREAM_SNDBUF_BYTES."""
    sock = request.transport.get_extra_info("socket") if request.transport else None
    if sock is not None:
        sock.setsockopt(SOL_SOCKET, SO_SNDBUF, STREAM_SNDBUF_BYTES)


def closed_check(request: web.Request) -> Callable[[], bool]:
    """A check that says whether ``request``'s connection is gone."""
    def closed() -> bool:
        transport = request.transport
        return transport is None or transport.is_closing()

    return closed


async def within(ctx: ServerContext, sub: Subscription, write: Awaitable[None]) -> None:
    """Run one stream write; a peer that does not take it in time is a slow consumer."""
    try:
        async with asyncio.timeout(ctx.config.stream_write_timeout_s):
            await write
    except TimeoutError:
        sub.close(SLOW_CONSUMER)
        raise SlowConsumer(SLOW_CONSUMER) from None


class SlowConsumer(ConnectionError):
    """A stream's peer reads too slowly (its queue overflowed or a write timed out)."""


async def goodbye(request: web.Request, last_words: Awaitable[object]) -> None:
    """Queue ``last_words`` and give the peer :data:`GOODBYE_TIMEOUT_S` to read what is
    buffered up to them; then close (everything was handed to the kernel) or abort."""
    transport = request.transport
    try:
        async with asyncio.timeout(GOODBYE_TIMEOUT_S):
            await last_words
            while transport is not None and transport.get_write_buffer_size() > 0:
                await asyncio.sleep(HOLD_STEP_S)
    except (TimeoutError, ConnectionError, RuntimeError):  # RuntimeError: aiohttp, once closing
        aborter(request)()
        return
    if transport is not None:
        transport.close()


def aborter(request: web.Request) -> Callable[[], None]:
    """A callable that aborts ``request``'s connection (a drop fault, a cut consumer): the
    peer hears the end at once (:func:`hang_up`), the transport closes on the next turn."""
    transport = request.transport

    def abort() -> None:
        if transport is not None:
            hang_up(transport)
            transport.abort()

    return abort


def hang_up(transport: asyncio.BaseTransport) -> None:
    """Send the peer its end of ``transport``'s TCP connection now (FIN, RFC 9293 §3.6).

    ``transport.abort()`` closes the socket only on the loop's next turn, after the
    protocol's ``connection_lost``: an outage aborting 10,000 WebSockets sent the last FIN
    seconds after the first while aiohttp ran each one's ``connection_lost``, so the clients
    noticed the outage spread over seconds. ``shutdown`` acts on the connection, not the
    descriptor, so a duplicate of the descriptor does it (uvloop's transport sockets refuse
    ``shutdown`` themselves) and the transport still owns and closes its own.
    """
    sock = transport.get_extra_info("socket")
    if sock is None or sock.fileno() < 0:
        return
    try:
        with socket.fromfd(sock.fileno(), sock.family, sock.type) as dup:
            dup.shutdown(socket.SHUT_RDWR)
    except OSError:  # the peer is gone already (ENOTCONN): nothing to tell it
        pass
