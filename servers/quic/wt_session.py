"""One WebTransport session's sender: its envelopes on a stream and as datagrams, its pings.

Per session the server opens one unidirectional stream of newline-delimited JSON (the
backlog after ``since``, then every live envelope; :mod:`servers.quic.server` describes the lines)
and sends each live envelope as one HTTP/3 datagram too. Faults act per envelope: ``stall``
and ``delay`` hold each one to its own time (:func:`held`), envelopes already due go out
together, and the writer flushes what it has before it waits for the next one.

What a session may leave waiting for its peer is bounded (:mod:`servers.quic.budget`): at the
bound the writer stops queueing and waits for the peer to acknowledge or grant flow-control
credit; a peer that grants none for ``stuck_after_s`` (or falls a whole subscription queue
behind meanwhile) gets its session closed, its stuck streams reset so their buffers go.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable, Coroutine
from typing import Any, Protocol

from aioquic.h3.connection import ErrorCode, H3Connection, Setting
from aioquic.quic.connection import QuicConnection, stream_is_unidirectional

from rtplay.compat.aioquic import buffered_bytes, pending_datagrams, stream_send_state
from rtplay.protocol.envelope import Envelope
from rtplay.protocol.messages import LIVE
from rtplay.protocol.wt import CLOSE_BAD_PING, CLOSE_SERVER_ERROR, CLOSE_TOO_SLOW, close_capsule, pong_for
from servers.core.context import WRITE_BATCH, ServerContext, Throttle, hold_envelope
from servers.core.hub import Backlog
from servers.core.pubsub import Subscription
from servers.quic.budget import (
    ENVELOPE_BUDGET_BYTES,
    MAX_CONNECTION_BUFFERED_BYTES,
    MAX_PONG_BUFFERED_BYTES,
    STUCK_AFTER_S,
    CreditWatch,
    room,
)
from servers.quic.wtproto import stream_lines

log = logging.getLogger(__name__)

TRANSPORT = "wt"

#: Largest envelope sent as a datagram. A datagram must fit one QUIC packet of at least
#: 1200 bytes (RFC 9000 §14): minus the short header (≤ 25), the AEAD tag (16) and the
#: DATAGRAM frame and quarter-stream-id varints (≤ 11), with margin. Bigger envelopes
#: still go on the stream.
MAX_DATAGRAM_PAYLOAD = 1100

#: Datagrams queued inside aioquic (waiting for congestion window) before newer ones are
#: dropped at the tail, as a router queue would: ~1 s at 1000 msg/s, ~100 KiB. A datagram
#: older than that is stale for real-time use anyway.
MAX_PENDING_DATAGRAMS = 1024

#: Client→server ping lines are ``{"ping": <float>}``, ~30 bytes.
MAX_PING_LINE_BYTES = 1024

#: Bidirectional (ping) streams a session may have open at once; ours uses one.
MAX_PING_STREAMS = 4

DROPPED = "connection dropped (fault)"

#: RFC 9114 §8.1: the stream's response is cancelled. A stuck stream is reset with it (what
#: waits there is dropped); why goes in the session's close capsule.
RESET_CODE = ErrorCode.H3_REQUEST_CANCELLED


class NotReading(Exception):
    """The peer leaves what the session writes waiting: the session ends (the message says why)."""


def held(ctx: ServerContext, env: Envelope, now_s: float) -> bool:
    """Whether a fault holds ``env`` at wall time ``now_s`` (a stall, or ``delay`` not yet over
    since the envelope's own send time)."""
    if ctx.faults.stalled(TRANSPORT):
        return True
    delay = ctx.faults.delay_for(TRANSPORT)
    return bool(delay) and env.t / 1000 + delay > now_s



class SessionPort(Protocol):
    """What a session needs of the QUIC connection that carries it (and nothing more)."""

    @property
    def quic(self) -> QuicConnection:
        """The connection's QUIC state machine (streams, datagrams, flow control)."""

    @property
    def ctx(self) -> ServerContext:
        """The server's shared context (hub, faults, registry)."""

    @property
    def progress(self) -> asyncio.Event:
        """Set whenever the peer sent something: a blocked writer may go on."""

    def abort(self, reason: str = ...) -> None:
        """Close the connection at once, with every session on it."""

    def forget(self, session_id: int) -> None:
        """The session ended: stop routing its streams."""

    def peer_not_reading(self) -> None:
        """A session closed with bytes stuck for the peer: watch the whole connection."""

    def transmit(self) -> None:
        """Send what the state machine has queued."""


class WtSession:
    """One WebTransport session: envelopes out on a stream and as datagrams, pings answered."""

    def __init__(
        self, conn: SessionPort, h3: H3Connection, session_id: int, since: int,
        stuck_after_s: float = STUCK_AFTER_S,
    ) -> None:
        self._conn = conn
        self._h3 = h3
        self._quic = conn.quic
        self.session_id = session_id
        """The stream id of the CONNECT request (draft-ietf-webtrans-http3-02 §2)."""
        self.since = since
        self._stream_id: int | None = None
        self._pings: dict[int, bytearray] = {}
        self._throttle = Throttle(conn.ctx, TRANSPORT)
        self._task: asyncio.Task[None] | None = None
        self._sub: Subscription | None = None
        self._watch = CreditWatch(stuck_after_s)
        """Is the envelope stream waiting for credit the peer does not grant?"""
        self._unacked = False
        """The envelope stream held unacknowledged bytes when last looked at."""
        self._clock = asyncio.get_running_loop().time
        self.closed = False
        self.datagrams_shed = 0
        """Datagrams not sent: aioquic's queue or the connection's budget was full, or one would
        not fit a packet."""

    def start(self, spawn: Callable[[Coroutine[Any, Any, None]], asyncio.Task[None]]) -> None:
        self._task = spawn(self._run())

    def abort(self) -> None:
        """The ``drop`` fault: close this session's QUIC connection at once."""
        self._conn.abort(DROPPED)

    def end(self) -> None:
        """The session is over (connection gone, client closed it): stop sending."""
        self.closed = True
        if self._task is not None and self._task is not asyncio.current_task():
            self._task.cancel()

    def close(self, code: int, reason: str) -> None:
        """Close the session with a reason the client can show, then stop (idempotent)."""
        if self.closed:
            return
        log.info("wt: closing session %d: %s", self.session_id, reason)
        stuck = False
        try:
            if self._stream_id is not None:
                stuck = self._finish(self._stream_id, fin=True)
            for stream_id in self._pings:
                stuck = self._finish(stream_id, fin=False) or stuck
            self._h3.send_data(self.session_id, close_capsule(code, reason), end_stream=True)
        except Exception as exc:  # the peer may have reset the stream: nothing left to tell it
            log.debug("wt: session %d close not sent: %s", self.session_id, exc)
        self._conn.transmit()
        self.end()
        if stuck:
            self._conn.peer_not_reading()

    def _finish(self, stream_id: int, fin: bool) -> bool:
        """Reset one of our streams when what it holds waits for credit the peer has not
        granted (its buffer is then released; True); otherwise a FIN after it, if ``fin``."""
        if stream_send_state(self._quic, stream_id).blocked:
            self._quic.reset_stream(stream_id, RESET_CODE)
            return True
        if fin:
            self._quic.send_stream_data(stream_id, b"", end_stream=True)
        return False

    async def _run(self) -> None:
        ctx = self._conn.ctx
        sub, backlog = ctx.broadcaster.subscribe(self.since)
        self._sub = sub
        live_from = ctx.broadcaster.hub.last_seq + 1  # subscribe() is synchronous: no gap, no overlap
        try:
            with ctx.registry.track(TRANSPORT, self.abort):
                reason = await self._stream(ctx, sub, backlog, live_from)
            self.close(CLOSE_TOO_SLOW, reason)
        except NotReading as exc:
            self.close(CLOSE_TOO_SLOW, str(exc))
        except Exception:  # a bug or an aioquic surprise ends this session, not the server
            log.exception("wt: session %d failed", self.session_id)
            self.close(CLOSE_SERVER_ERROR, "server error")
        finally:
            ctx.broadcaster.unsubscribe(sub)
            self._conn.forget(self.session_id)

    async def _stream(
        self, ctx: ServerContext, sub: Subscription, backlog: Backlog, live_from: int
    ) -> str:
        """Send the backlog, then live envelopes, until the subscription closes (returns why)."""
        stream_id = self._h3.create_webtransport_stream(self.session_id, is_unidirectional=True)
        self._stream_id = stream_id
        head: list[dict[str, object]] = []
        if backlog.reset is not None:
            head.append({"reset": backlog.reset.to_json()})
        head.append({LIVE: live_from})
        self._quic.send_stream_data(stream_id, "".join(json.dumps(line) + "\n" for line in head).encode())
        last = backlog.after  # not a future cursor: after its reset the stream goes on from the head
        for start in range(0, len(backlog.messages), WRITE_BATCH):
            chunk = backlog.messages[start : start + WRITE_BATCH]
            await self._write_in_time(ctx, stream_id, chunk, live=False)
            last = chunk[-1].seq
        while True:
            env = await sub.get(timeout=self._until_stuck())
            if env is None:
                if sub.closed.is_set():
                    return sub.reason
                self._check_credit(stream_id)  # waited for the peer's credit: is it stuck?
                continue
            batch = [e for e in [env, *sub.drain(WRITE_BATCH - 1)] if e.seq > last]
            if batch:
                await self._write_in_time(ctx, stream_id, batch, live=True)
                last = batch[-1].seq

    async def _write_in_time(
        self, ctx: ServerContext, stream_id: int, batch: list[Envelope], live: bool
    ) -> None:
        """Write ``batch``, each envelope no earlier than its own time (``delay`` and
        ``stall`` hold each one): envelopes already due go out together, and the writer
        flushes what it has before it waits for the next one."""
        if ctx.faults.none_active():  # nothing can hold or pace it: the common case, per message
            await self._write(stream_id, batch, live, paced=False)
            return
        start = 0
        for index, env in enumerate(batch):
            if index > start and held(ctx, env, time.time()):
                await self._write(stream_id, batch[start:index], live)
                start = index
            await hold_envelope(ctx, TRANSPORT, env)
        await self._write(stream_id, batch[start:], live)

    async def _write(self, stream_id: int, batch: list[Envelope], live: bool, paced: bool = True) -> None:
        """Envelopes on the stream (waiting while it is too far behind), live ones as datagrams;
        ``paced``: through the ``throttle`` fault's bucket (the path's bandwidth is shared)."""
        data = stream_lines(batch)
        datagrams = [env.json.encode() for env in batch] if live else []
        if paced:
            await self._throttle(len(data) + sum(map(len, datagrams)))
        await self._send_within_budget(stream_id, data)
        space = ENVELOPE_BUDGET_BYTES - buffered_bytes(self._quic) if datagrams else 0
        for payload in datagrams:
            space -= len(payload)
            self._send_datagram(payload, fits=space >= 0)
        self._conn.transmit()
        self._check_credit(stream_id)

    async def _send_within_budget(self, stream_id: int, data: bytes) -> None:
        """Queue ``data`` on the stream as far as the budget allows; at the bound, stop
        queueing and wait for the peer (:class:`NotReading` if it takes nothing)."""
        sent = 0
        while sent < len(data):
            space = room(stream_send_state(self._quic, stream_id).buffered, buffered_bytes(self._quic))
            if space == 0:
                self._conn.transmit()
                await self._wait_for_peer(stream_id)
                continue
            self._quic.send_stream_data(stream_id, data[sent : sent + space])
            sent += space

    async def _wait_for_peer(self, stream_id: int) -> None:
        """Until the peer sends something (an ACK, credit), the subscription closes, or the
        stream has waited for credit too long."""
        assert self._sub is not None
        self._check_credit(stream_id)
        if self._sub.closed.is_set():
            raise NotReading(self._sub.reason)
        progress = self._conn.progress
        progress.clear()
        waiters = {asyncio.ensure_future(progress.wait()), asyncio.ensure_future(self._sub.closed.wait())}
        try:
            await asyncio.wait(waiters, timeout=self._until_stuck(), return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waiters:
                waiter.cancel()
        if self._sub.closed.is_set():
            raise NotReading(self._sub.reason)
        self._check_credit(stream_id)

    def _until_stuck(self) -> float | None:
        """Seconds until the envelope stream counts as stuck, or until it is worth looking
        again (what was written may run into the peer's credit after we looked: aioquic paces
        packets out on its own timer); None when it holds nothing."""
        deadline = self._watch.deadline
        if deadline is not None:
            return max(0.0, deadline - self._clock())
        return self._watch.stuck_after_s if self._unacked else None

    def _check_credit(self, stream_id: int) -> None:
        """Note where the envelope stream stands; :class:`NotReading` once it is stuck."""
        state = stream_send_state(self._quic, stream_id)
        now = self._clock()
        self._unacked = state.buffered > 0
        self._watch.observe(state.blocked, state.progress, now)
        if self._watch.stuck(now):
            raise NotReading(
                f"peer not reading: {state.buffered} bytes waited {self._watch.stuck_after_s:g} s"
                " for flow-control credit"
            )

    def _send_datagram(self, payload: bytes, fits: bool) -> None:
        """Queue one datagram unless it would not fit (a packet, the queue, or the
        connection's budget: ``fits``)."""
        # RFC 9297 §2.1.1: only to a peer whose SETTINGS enabled HTTP/3 datagrams.
        settings = self._h3.received_settings or {}
        if (
            not fits
            or settings.get(Setting.H3_DATAGRAM) != 1
            or len(payload) > MAX_DATAGRAM_PAYLOAD
            or pending_datagrams(self._quic) >= MAX_PENDING_DATAGRAMS
        ):
            self.datagrams_shed += 1  # tail drop: the client counts it as lost
            return
        self._h3.send_datagram(self.session_id, payload)

    def stream_data(self, stream_id: int, data: bytes, ended: bool) -> None:
        """Data on a client-opened stream of this session: ping lines on a bidi stream."""
        if stream_is_unidirectional(stream_id) or self.closed:
            return  # a client→server uni stream carries nothing we use
        buffer = self._pings.get(stream_id)
        if buffer is None:
            if len(self._pings) >= MAX_PING_STREAMS:
                self.close(CLOSE_BAD_PING, f"more than {MAX_PING_STREAMS} ping streams")
                return
            buffer = self._pings[stream_id] = bytearray()
        buffer += data
        *lines, rest = buffer.split(b"\n")
        if len(rest) > MAX_PING_LINE_BYTES:
            self.close(CLOSE_BAD_PING, f"ping line over {MAX_PING_LINE_BYTES} bytes")
            return
        self._pings[stream_id] = bytearray(rest)
        ctx = self._conn.ctx
        ctx.faults.expire(ctx.clock())
        for line in filter(None, lines):
            try:
                pong = pong_for(bytes(line))
            except ValueError as exc:
                self.close(CLOSE_BAD_PING, str(exc))
                return
            if not ctx.faults.stalled(TRANSPORT):  # a stalled server answers nothing
                self._quic.send_stream_data(stream_id, pong)
        if (
            stream_send_state(self._quic, stream_id).buffered > MAX_PONG_BUFFERED_BYTES
            or buffered_bytes(self._quic) > MAX_CONNECTION_BUFFERED_BYTES
        ):
            self.close(CLOSE_TOO_SLOW, "peer not reading its pongs")
            return
        if ended:
            del self._pings[stream_id]
            self._quic.send_stream_data(stream_id, b"", end_stream=True)
        self._conn.transmit()
