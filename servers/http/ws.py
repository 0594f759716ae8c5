"""The /ws endpoint: envelopes out, ``{"ping": t}`` / ``{"pong": t}`` round trips in."""

from __future__ import annotations

import asyncio
import logging
import re

from aiohttp import WSMsgType, web

from rtplay.protocol.envelope import Envelope
from rtplay.protocol.strictjson import JsonError, JsonTooDeep, finite_float, loads_strict
from servers.core.context import ServerContext, Throttle, wait_unstalled
from servers.core.hub import Backlog
from servers.core.pubsub import Subscription
from servers.http.common import CTX, SlowConsumer, aborter, bound_send_buffer, closed_check, cursor_of, goodbye, within
from servers.http.streams import EnvelopeStream, SharedFrame, relay
from servers.http.ws_heartbeat import PING_FRAME, HeartbeatWheel
from servers.http.wsguard import GuardedStream, masked_frames_only, text_frames

log = logging.getLogger(__name__)

#: Largest client→server WebSocket message: ours are ``{"ping": <float>}``, ~30 bytes.
MAX_WS_MESSAGE = 4 * 1024

#: permessage-deflate (RFC 7692) is declined: compressing each ~80-byte envelope was a third
#: of the server's ws send path (py-spy at 20k msg/s) and ~25 % more CPU at 1000 msg/s.
WS_COMPRESS = False


async def ws(request: web.Request) -> web.WebSocketResponse:
    ctx = request.app[CTX]
    since = cursor_of(request.query.get("since"))
    # No aiohttp heartbeat: the listener's HeartbeatWheel costs nothing per message or connection.
    socket = web.WebSocketResponse(heartbeat=None, max_msg_size=MAX_WS_MESSAGE, compress=WS_COMPRESS)
    guarded = masked_frames_only(request)
    bound_send_buffer(request)
    await socket.prepare(request)
    sub, backlog = ctx.broadcaster.subscribe(since)
    stream = _WsStream(ctx, sub, Throttle(ctx, "ws", closed_check(request)), socket, guarded)
    with ctx.registry.track("ws", aborter(request)):
        sender = asyncio.create_task(_ws_send(request, socket, stream, backlog, since))
        forget = request.app[HEARTBEATS].add(lambda: guarded.received, lambda: _ping(guarded), aborter(request))
        try:
            await _ws_receive(ctx, socket)
        finally:
            forget()
            sender.cancel()
            ctx.broadcaster.unsubscribe(sub)
            await asyncio.gather(sender, return_exceptions=True)
            forget_closing_error(socket)
    return socket


#: Exceptions of one chain (``__context__``/``__cause__``) whose tracebacks are let go: aiohttp's
#: closing error has one cause; a deeper chain is bounded anyway.
MAX_CHAIN = 8


def forget_closing_error(socket: web.WebSocketResponse) -> None:
    """Let go of the tracebacks of the error that closed ``socket``, once its handler is done.

    aiohttp keeps that error (``socket.exception()``: on a dropped connection, writing the close
    frame to a transport already closing, raised while handling the reader's end of stream),
    and its tracebacks hold the frames of the response's own methods, so the response, the
    request, its transport and reader (~44 objects) form a cycle that only a full collection
    frees: ~95 µs a connection, a second of the server's core when an outage dropped 10,000
    WebSockets, while every client was noticing it. Without the tracebacks the connection's
    objects go as its handler ends. The error itself stays, for whoever asks how it closed.
    """
    error = socket.exception()
    for _ in range(MAX_CHAIN):
        if error is None:
            return
        error.__traceback__ = None
        error = error.__cause__ or error.__context__


def _ping(guarded: GuardedStream) -> None:
    if not guarded.transport.is_closing():  # closing meanwhile: the receiver notices
        guarded.write(PING_FRAME)


#: The WebSocket heartbeats of one HTTP listener (servers.http.ws_heartbeat).
HEARTBEATS: web.AppKey[HeartbeatWheel] = web.AppKey("rtplay-ws-heartbeats", HeartbeatWheel)


def install_heartbeats(app: web.Application, ctx: ServerContext) -> None:
    """Give ``app`` its heartbeat wheel, stopped with the app."""
    wheel = HeartbeatWheel(lambda: ctx.config.ws_heartbeat_s)
    app[HEARTBEATS] = wheel

    async def stop(_: web.Application) -> None:
        wheel.close()

    app.on_cleanup.append(stop)


#: ``{"ping": <number>}`` exactly as clients write it (``json.dumps``: one space after the
#: colon, or none), matched without the JSON parser; anything else takes the parser's path.
#: The number is RFC 8259 §6's grammar: integer part, then fraction and exponent.
_PING = re.compile(r'\{"ping": ?(-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?)\}')

#: Digits of an integer part that no double can overflow at (DBL_MAX is about 1.8e308).
_FINITE_DIGITS = 308


def ping_number(text: str) -> str:
    """The JSON text of the number in a ``{"ping": <number>}`` message, for the pong.

    The pong carries the very number the ping did: the matched text is echoed (a JSON parser
    reads it as the same number), and only a number that could overflow is converted to
    check it. Raises :class:`JsonError` (:class:`JsonTooDeep` for absurd nesting) for what is
    not strict JSON, KeyError or TypeError for JSON of another shape.
    """
    match = _PING.fullmatch(text)
    if match is None:
        return repr(stamp_of(loads_strict(text)))  # an int's or a float's repr is its JSON text
    number, integer, fraction, exponent = match.groups()
    if exponent or (fraction and len(integer) > _FINITE_DIGITS):
        finite_float(number)  # JsonError when it overflows, as the strict parser says
    return number


def stamp_of(payload: object) -> int | float:
    """The ``ping`` number of a parsed message (strict JSON numbers are finite; ints any size)."""
    if not isinstance(payload, dict):
        raise TypeError(f"expected an object, got {type(payload).__name__}")
    stamp = payload["ping"]
    if not isinstance(stamp, int | float) or isinstance(stamp, bool):
        raise TypeError(f"ping is not a number: {stamp!r:.40}")
    return stamp


async def _ws_receive(ctx: ServerContext, socket: web.WebSocketResponse) -> None:
    """Answer ``{"ping": t}`` with ``{"pong": t}``; anything else ends the connection."""
    async for msg in socket:
        if msg.type is not WSMsgType.TEXT:
            await socket.close(code=1003, message=b"only text frames are accepted")
            return
        try:
            number = ping_number(msg.data)
        except JsonTooDeep as exc:  # RFC 6455 §7.4.1: 1009, a message too big to process
            await socket.close(code=1009, message=str(exc).encode()[:REASON_BYTES])
            return
        except (JsonError, KeyError, TypeError):
            await socket.close(code=1008, message=b'expected {"ping": <number>}')
            return
        if ctx.faults.stalled("ws"):
            await wait_unstalled(ctx, "ws")  # a stalled server answers nothing
        try:
            await socket.send_str('{"pong":' + number + "}")  # no encoder on the round trip's path
        except ConnectionError:  # the client gave up on us meanwhile (e.g. heartbeat)
            return


#: The newest envelope as one text frame, for every sink.
WS_FRAME = SharedFrame(lambda env: text_frames([env.json]))

#: RFC 6455 §5.5: a control frame's payload is at most 125 bytes, 2 of them the close code.
REASON_BYTES = 123


async def _ws_send(request: web.Request, socket: web.WebSocketResponse, stream: _WsStream, backlog: Backlog, since: int) -> None:
    sub = stream.sub
    try:
        if backlog.reset is not None:
            await socket.send_str(backlog.reset.message())
        await relay(stream, backlog, backlog.after)
        await socket.close(code=1013, message=sub.reason.encode()[:REASON_BYTES])
    except SlowConsumer:
        log.info("ws: closing a slow consumer (%s)", sub.reason)
        await goodbye(request, socket.close(code=1013, message=sub.reason.encode()[:REASON_BYTES]))
    except (ConnectionError, RuntimeError) as exc:  # aiohttp raises these once closing
        log.debug("ws sender ended: %s", exc)


class _WsStream(EnvelopeStream):
    """One WebSocket's writing side: the envelopes of a batch as text frames in one write,
    straight to the transport (through the guard, which follows its flow control)."""

    __slots__ = ("socket", "guarded")

    transport = "ws"

    def __init__(
        self, ctx: ServerContext, sub: Subscription, throttle: Throttle, socket: web.WebSocketResponse, guarded: GuardedStream
    ) -> None:
        super().__init__(ctx, sub, throttle)
        self.socket = socket
        self.guarded = guarded

    def sink(self, envelope: Envelope) -> bool:
        """The text frame straight to the transport, unless the peer holds writes up."""
        guarded = self.guarded
        if self.socket.closed or guarded.paused or guarded.transport.is_closing() or self.shaped():
            return False
        guarded.write(WS_FRAME(envelope))
        self.last = envelope.seq
        return True

    def encode(self, group: list[Envelope]) -> bytes:
        return text_frames([env.json for env in group])

    async def write(self, data: bytes) -> None:
        if self.socket.closed:  # RFC 6455 §5.5.1: nothing after a close frame
            raise ConnectionResetError("ws closing")
        self.guarded.write(data)
        if self.guarded.paused:  # the slow-consumer deadline runs only while the peer holds us up
            await within(self.ctx, self.sub, self.guarded.drained())
