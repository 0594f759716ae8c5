"""aioquic internals rtplay relies on, in one place, checked at start-up.

aioquic has no public API for how much a connection has queued (which bounding the server's
send buffers needs), for the live connections of a server, for opening a bidirectional
WebTransport stream that answers arrive on, or for when a receiver acknowledges (aioquic
acknowledges 1 ms after any packet, which at 1000 packets/s is a packet back for every one or
two received); these functions read its internals and are the only places that do.
"""

from __future__ import annotations

from dataclasses import dataclass

import aioquic

# aioquic.buffer re-exports its compiled Buffer without declaring it public; this is the class.
from aioquic._buffer import Buffer as _Buffer
from aioquic.asyncio.protocol import QuicConnectionProtocol
from aioquic.asyncio.server import QuicServer
from aioquic.h3.connection import FrameType, H3Connection, H3Stream
from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.connection import QuicConnection, QuicConnectionState
from aioquic.quic.events import ConnectionTerminated
from aioquic.quic.recovery import QuicPacketSpace
from aioquic.quic.retry import QuicRetryTokenHandler
from aioquic.quic.stream import QuicStream, QuicStreamSender
from aioquic.tls import Epoch

from rtplay.compat import require

QuicBuffer = _Buffer
"""aioquic's packet buffer (``aioquic.buffer`` re-exports it without declaring it public)."""

#: The aioquic versions whose internals this module was written against (pyproject bounds them).
TESTED = "1.2-1.7"


def check() -> None:
    """Fail with a clear message if this aioquic lacks an internal the functions below read."""
    quic = QuicConnection(configuration=QuicConfiguration(is_client=True))  # pure: no I/O
    space = QuicPacketSpace()
    sender = QuicStreamSender(stream_id=0, writable=True)
    h3 = H3Connection(quic, enable_webtransport=True)
    found = {
        "QuicConnection._streams": isinstance(getattr(quic, "_streams", None), dict),
        "QuicConnection._datagrams_pending": hasattr(quic, "_datagrams_pending"),
        "QuicConnection._remote_max_data/_remote_max_data_used": all(
            isinstance(getattr(quic, name, None), int) for name in ("_remote_max_data", "_remote_max_data_used")
        ),
        "QuicStreamSender._buffer_start/_buffer_stop": all(
            isinstance(getattr(sender, name, None), int) for name in ("_buffer_start", "_buffer_stop")
        ),
        "QuicStreamSender._reset_error_code": hasattr(sender, "_reset_error_code"),
        "H3Connection._stream": isinstance(getattr(h3, "_stream", None), dict),
        "QuicServer._protocols": "_protocols" in QuicServer.__init__.__code__.co_names,
        "QuicServer._retry": "_retry" in QuicServer.__init__.__code__.co_names,
        "QuicServer._configuration": "_configuration" in QuicServer.__init__.__code__.co_names,
        "QuicConnection._handshake_complete": isinstance(getattr(quic, "_handshake_complete", None), bool),
        "QuicConnection._ack_delay": isinstance(getattr(quic, "_ack_delay", None), float),
        "QuicConnection._spaces": isinstance(getattr(quic, "_spaces", None), dict),
        "QuicConnection._close_event/_state": hasattr(quic, "_close_event")
        and isinstance(getattr(quic, "_state", None), QuicConnectionState),
        "QuicPacketSpace.ack_at/ack_queue": all(hasattr(space, n) for n in ("ack_at", "ack_queue")),
        "QuicConnectionProtocol._timer/_timer_at/_handle_timer": {"_timer", "_timer_at", "_handle_timer"}
        <= set(QuicConnectionProtocol.transmit.__code__.co_names),
    }
    missing = [name for name, ok in found.items() if not ok]
    require("aioquic", aioquic.__version__, TESTED, not missing, ", ".join(missing))


@dataclass(frozen=True)
class SendState:
    """What a stream, or a whole connection, holds for its peer."""

    buffered: int
    """Bytes written and not yet acknowledged, sent or not (and, for a connection, the
    DATAGRAM frames queued)."""
    blocked: bool
    """New bytes wait for flow-control credit (RFC 9000 §4.1) the peer has not granted."""
    progress: tuple[int, ...]
    """Changes whenever the peer acknowledges data or grants more credit (compare, don't order)."""


def _stream_state(quic: QuicConnection, stream: QuicStream) -> SendState:
    sender = stream.sender
    # Written and never sent yet; after a reset nothing more is sent (the buffer goes when
    # the peer acknowledges the RESET_STREAM and aioquic discards the stream).
    waiting = sender._buffer_stop > sender.highest_offset and sender._reset_error_code is None
    # What aioquic's _write_application lets the next STREAM frame reach: the stream's and
    # the connection's credit together.
    credit = min(
        stream.max_stream_data_remote, sender.highest_offset + quic._remote_max_data - quic._remote_max_data_used
    )
    return SendState(
        buffered=sender._buffer_stop - sender._buffer_start,
        blocked=waiting and sender.highest_offset >= credit,
        progress=(sender._buffer_start, stream.max_stream_data_remote, quic._remote_max_data),
    )


def stream_send_state(quic: QuicConnection, stream_id: int) -> SendState:
    """The send side of ``stream_id`` (nothing held once aioquic has discarded the stream)."""
    stream = quic._streams.get(stream_id)
    return SendState(0, False, ()) if stream is None else _stream_state(quic, stream)


def connection_send_state(quic: QuicConnection) -> SendState:
    """Every stream's send side together, plus the DATAGRAM frames queued: blocked when any
    stream is, progress when any stream's (or a stream was discarded: it finished)."""
    states = [_stream_state(quic, stream) for stream in quic._streams.values()]
    return SendState(
        buffered=sum(s.buffered for s in states) + sum(map(len, quic._datagrams_pending)),
        blocked=any(s.blocked for s in states),
        progress=(len(states), quic._remote_max_data, *(sum(s.progress[i] for s in states) for i in (0, 1))),
    )


def buffered_bytes(quic: QuicConnection) -> int:
    """What :func:`connection_send_state` calls ``buffered``, cheaply (asked before every write)."""
    streams = sum(s.sender._buffer_stop - s.sender._buffer_start for s in quic._streams.values())
    return streams + sum(map(len, quic._datagrams_pending))


def peer_closed(quic: QuicConnection) -> ConnectionTerminated | None:
    """The peer's CONNECTION_CLOSE, as soon as it arrived. aioquic raises ConnectionTerminated
    only once the draining period is over (three probe timeouts, 0.1-0.3 s on loopback); the
    connection is over for the application at once (RFC 9000 §10.2.2: a draining endpoint
    sends nothing more), and a browser says so at once."""
    event = quic._close_event
    if quic._state is QuicConnectionState.DRAINING and isinstance(event, ConnectionTerminated):
        return event
    return None


def pending_datagrams(quic: QuicConnection) -> int:
    """DATAGRAM frames queued but not yet sent."""
    return len(quic._datagrams_pending)


def server_protocols(server: QuicServer) -> list[QuicConnectionProtocol]:
    """A server's live QUIC connections. aioquic keeps them only in ``_protocols`` (keyed by
    connection id, one entry per id) and offers no public list."""
    return list(set(server._protocols.values()))


def protocol_for(server: QuicServer, connection_id: bytes) -> QuicConnectionProtocol | None:
    """The server's connection known by ``connection_id``, if any."""
    return server._protocols.get(connection_id)


def connection_count(server: QuicServer) -> int:
    """How many connection ids the server knows (grows when it creates a connection)."""
    return len(server._protocols)


def handshake_complete(protocol: QuicConnectionProtocol) -> bool:
    """Has this connection finished its handshake (its peer's address is then validated)?"""
    return bool(protocol._quic._handshake_complete)


def host_cid_length(server: QuicServer) -> int:
    """The length of the connection ids the server issues (to parse short headers)."""
    return int(server._configuration.connection_id_length)


def use_retry(server: QuicServer, handler: QuicRetryTokenHandler | None) -> None:
    """Make the server validate addresses with Retry (``handler``) or not (None) from now on.

    aioquic decides once, at construction; the admission policy decides per Initial."""
    setattr(server, "_retry", handler)


def open_bidi_stream(h3: H3Connection, session_id: int) -> int:
    """Open a bidirectional WebTransport stream and return its id.

    aioquic workaround (1.7.2): ``create_webtransport_stream`` writes the WEBTRANSPORT_STREAM
    signal but does not record the stream as a WebTransport stream on our side, so the peer's
    answers on it are parsed as HTTP/3 frames: our pong lines vanish as unknown frame types
    (RFC 9114 §9), other bytes could fail the connection. Record it the way aioquic records a
    peer-opened one (frame type + session id), so answers arrive as
    WebTransportStreamDataReceived.
    """
    stream_id = h3.create_webtransport_stream(session_id, is_unidirectional=False)
    stream = h3._stream.setdefault(stream_id, H3Stream(stream_id))
    stream.frame_type = FrameType.WEBTRANSPORT_STREAM
    stream.session_id = session_id
    return stream_id


def set_ack_delay(quic: QuicConnection, seconds: float) -> None:
    """Acknowledge ack-eliciting packets ``seconds`` after the first unacknowledged one.

    aioquic's receiver waits 1 ms (``K_GRANULARITY``) and has no setting for it. The delay
    must stay under the ``max_ack_delay`` aioquic advertises (25 ms), which the peer adds to
    its probe timeout (RFC 9002 §6.2.1)."""
    quic._ack_delay = seconds


def ack_state(quic: QuicConnection) -> tuple[bool, int]:
    """Of the 1-RTT packet space: is an ACK owed, and how many ranges would it carry (a new
    range is a new gap: a packet arrived out of order, or one before it is missing)."""
    space = quic._spaces.get(Epoch.ONE_RTT)
    return (False, 0) if space is None else (space.ack_at is not None, len(space.ack_queue))


def ack_now(quic: QuicConnection, now: float) -> None:
    """Make an owed 1-RTT ACK due at ``now`` (the next ``datagrams_to_send`` carries it)."""
    space = quic._spaces.get(Epoch.ONE_RTT)
    if space is not None and space.ack_at is not None:
        space.ack_at = min(space.ack_at, now)


def rearm_timer(protocol: QuicConnectionProtocol) -> None:
    """What ``QuicConnectionProtocol.transmit`` does after sending: (re)arm the connection's
    timer for ``get_timer()``. For a receiver that decided it has nothing to send yet."""
    timer_at = protocol._quic.get_timer()
    if protocol._timer is not None and protocol._timer_at != timer_at:
        protocol._timer.cancel()
        protocol._timer = None
    if protocol._timer is None and timer_at is not None:
        protocol._timer = protocol._loop.call_at(timer_at, protocol._handle_timer)
    protocol._timer_at = timer_at
