"""SCTP chunk bundling for aiortc (RFC 9260 §6.10), opted into per association.

aiortc sends every DATA chunk in its own SCTP packet ("no bundling for now"), so each
data-channel message costs one DTLS record, one UDP datagram and one SACK to process on the
way back; at 1000 msg/s on two channels that is most of a core, half of it in
``_receive_sack_chunk``. Bundling puts the chunks that are ready at the same moment into
one packet of at most ``SCTP_MAX_PACKET_LENGTH`` bytes: each message stays its own chunk
(its own data-channel message), only the packets, records, datagrams and SACKs get fewer.

Three private methods of ``RTCSctpTransport`` are replaced, process-wide, by versions that
behave exactly like aiortc's own unless the association was passed to :func:`enable`:

* ``_data_channel_send`` queues the message as aiortc does but schedules one flush per
  event-loop turn, not a task per message: a burst sent in one turn is flushed once;
* ``_data_channel_flush`` moves queued messages into the outbound queue a packet's worth
  (:data:`FLUSH_CHUNKS`) at a time, transmitting each batch, for as long as the congestion
  window lets the previous batch out (aiortc moves one message and transmits it at once);
* ``_transmit`` is aiortc's own (FORWARD-TSN, retransmissions, congestion window) except
  that the chunks it may send go out bundled, retransmissions first (RFC 9260 §6.10, §7.2.4
  step 3: as many marked chunks as fit in a packet), and each transmission is numbered for
  :mod:`.aiortc_fork_rtx`'s loss recovery.

FORWARD-TSN and every other control chunk keep aiortc's one-chunk packets.

On the receiving side, :func:`deliver_text` hands a channel's text messages straight to one
handler (``_data_channel_receive`` replaced likewise), past pyee's ``emit``: its lock, its
copy of the listener list and its coroutine check cost as much per message as the handler.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from struct import pack
from typing import Any

import aiortc
from aiortc import rtcsctptransport as sctp
from OpenSSL import SSL

from rtplay.compat import replace_methods, require, require_line

#: The aiortc versions whose ``RTCSctpTransport`` internals this module was written against.
log = logging.getLogger(__name__)

TESTED = "1.16"

#: Messages moved from the data-channel queue per flush: about one full packet of envelopes
#: (~80 bytes each in a 1189-byte packet). aiortc's own bound is one message at a time.
FLUSH_CHUNKS = 16

#: On a DATA chunk, the number of its association's latest DATA transmission that carried it;
#: on the association, the number of its latest DATA transmission.
SENT_ORDER = "_rtplay_sent_order"
#: On an association, ``time.time()`` when it last retransmitted a DATA chunk (RFC 9260 §6.3.1 C5).
RETRANSMITTED_AT = "_rtplay_retransmitted_at"

_ATTR = "_rtplay_bundle"
_DEFER = "_rtplay_defer"
_DIRECT = "_rtplay_on_text"
_PENDING = "_rtplay_flush_pending"
_TASKS = "_rtplay_flush_tasks"

_INTERNALS = (
    "_data_channel_queue", "_outbound_queue", "_sent_queue", "_flight_size", "_cwnd",
    "_fast_recovery_exit", "_fast_recovery_transmit", "_forward_tsn_chunk", "_t3_handle", "_local_port", "_remote_port",
    "_remote_verification_tag", "_association_state", "_data_channel_id", "_data_channels",
    "_remote_max_message_size",
)
#: ``RTCDtlsTransport`` internals read here: its pyOpenSSL session (``_dtls_closing``).
_DTLS_INTERNALS = ("_ssl",)


def check() -> None:
    """Fail with a clear message if this aiortc lacks the SCTP internals bundling replaces."""
    source = sctp.RTCSctpTransport
    names = set(source.__init__.__code__.co_names)
    has = (
        all(
            hasattr(source, m)
            for m in ("_transmit", "_data_channel_flush", "_data_channel_send", "_data_channel_receive", "_send",
                      "_send_chunk", "_transmit_reconfig", "_t3_start", "_t3_restart", "_flight_size_increase")
        )
        and set(_INTERNALS) <= names | set(dir(source))
        and hasattr(sctp, "SCTP_MAX_PACKET_LENGTH")
        and hasattr(sctp, "crc32c")
        and set(_DTLS_INTERNALS) <= set(aiortc.RTCDtlsTransport.__init__.__code__.co_names)
    )
    require_line("aiortc", aiortc.__version__, TESTED, "rtplay's fork of aiortc's SCTP transmit path")
    require("aiortc", aiortc.__version__, TESTED, has, "RTCSctpTransport's transmit internals")


def enable(transport: Any) -> None:
    """Bundle this association's outgoing DATA chunks (an ``RTCSctpTransport``, e.g. ``pc.sctp``)."""
    _install()
    setattr(transport, _ATTR, True)


_ORIGINAL: dict[str, Any] = {}


def _install() -> None:
    if _ORIGINAL:
        return
    check()
    replace_methods(sctp.RTCSctpTransport, _ORIGINAL, {
        "_transmit": _transmit,
        "_data_channel_flush": _data_channel_flush,
        "_data_channel_send": _data_channel_send,
        "_data_channel_receive": _data_channel_receive,
    })


def deliver_text(channel: Any, handler: Callable[[str], None]) -> None:
    """Call ``handler`` directly with each text message ``channel`` receives, instead of
    emitting ``"message"``. Binary and empty messages, and every other event, still go to
    the channel's listeners; an exception from ``handler`` propagates as one from a pyee
    listener does (into aiortc's receive loop)."""
    _install()
    setattr(channel, _DIRECT, handler)


async def _data_channel_receive(self: Any, stream_id: int, pp_id: int, data: bytes) -> None:
    if pp_id == sctp.WEBRTC_STRING:
        handler = getattr(self._data_channels.get(stream_id), _DIRECT, None)
        if handler is not None:
            handler(data.decode("utf8"))
            return None
    await _ORIGINAL["_data_channel_receive"](self, stream_id, pp_id, data)


def _data_channel_send(self: Any, channel: Any, data: bytes | str) -> None:
    """aiortc 1.16's ``_data_channel_send``, except that one flush per loop turn takes the lot."""
    if not getattr(self, _ATTR, False):
        _ORIGINAL["_data_channel_send"](self, channel, data)
        return
    if data == "":
        pp_id, user_data = sctp.WEBRTC_STRING_EMPTY, b"\x00"
    elif isinstance(data, str):
        pp_id, user_data = sctp.WEBRTC_STRING, data.encode("utf8")
    elif data == b"":
        pp_id, user_data = sctp.WEBRTC_BINARY_EMPTY, b"\x00"
    else:
        pp_id, user_data = sctp.WEBRTC_BINARY, data
    limit = self._remote_max_message_size
    if limit and len(user_data) > limit:  # 0: the remote party takes messages of any size
        raise ValueError(
            f"Cannot send message of {len(user_data)} bytes, the remote party "
            f"only supports messages up to {limit} bytes"
        )
    channel._addBufferedAmount(len(user_data))
    self._data_channel_queue.append((channel, pp_id, user_data))
    if not getattr(self, _PENDING, False):
        setattr(self, _PENDING, True)
        tasks: set[asyncio.Task[None]] = self.__dict__.setdefault(_TASKS, set())
        task = asyncio.ensure_future(_flush_soon(self))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
    return None


async def _flush_soon(self: Any) -> None:
    setattr(self, _PENDING, False)  # a message sent while this flush runs gets a flush of its own
    try:
        await self._data_channel_flush()
    except (ConnectionError, SSL.Error) as exc:
        if isinstance(exc, SSL.Error) and not _dtls_closing(self.transport):
            raise
        # The DTLS transport closed under the association (a peer dropped or closing): what
        # was queued can no longer go anywhere, and the association's own close reports the
        # end. Nobody awaits this task, so raising would only log "Task exception was
        # never retrieved".
        log.debug("sctp: flush after the transport closed: %s", exc)


async def _data_channel_flush(self: Any) -> None:
    if not getattr(self, _ATTR, False):
        await _ORIGINAL["_data_channel_flush"](self)
        return
    if self._association_state != sctp.RTCSctpTransport.State.ESTABLISHED:
        return None
    # A packet's worth at a time, for as long as the congestion window takes them: what is
    # left waits in the data-channel queue (and in bufferedAmount) for the next SACK.
    while self._data_channel_queue and len(self._outbound_queue) < FLUSH_CHUNKS:
        await _move_messages(self)
        await self._transmit()
    await self._transmit_reconfig()  # a stream reset may have been waiting for these messages
    return None


async def _move_messages(self: Any) -> None:
    """Up to :data:`FLUSH_CHUNKS` queued messages into the outbound queue, as aiortc moves one."""
    setattr(self, _DEFER, True)  # _send() ends in _transmit(): hold it until all are queued
    try:
        moved = 0
        while self._data_channel_queue and moved < FLUSH_CHUNKS and len(self._outbound_queue) < FLUSH_CHUNKS:
            channel, protocol, user_data = self._data_channel_queue.popleft()
            stream_id = channel.id
            if stream_id is None:  # register the channel, as aiortc does
                stream_id = self._data_channel_id
                while stream_id in self._data_channels:
                    stream_id += 2
                self._data_channels[stream_id] = channel
                channel._setId(stream_id)
            if protocol == sctp.WEBRTC_DCEP:
                await self._send(stream_id, protocol, user_data)
            else:
                expiry = time.time() + channel.maxPacketLifeTime / 1000 if channel.maxPacketLifeTime else None
                await self._send(
                    stream_id, protocol, user_data, expiry=expiry,
                    max_retransmits=channel.maxRetransmits, ordered=channel.ordered,
                )
                channel._addBufferedAmount(-len(user_data))
            moved += 1
    finally:
        setattr(self, _DEFER, False)


async def _transmit(self: Any) -> None:
    """aiortc 1.16's ``_transmit``, except that DATA chunks go out bundled: retransmissions
    first, then new chunks (RFC 9260 §6.10), each stamped (:func:`_stamp`); and that a
    transport closed under the association ends it quietly."""
    if not getattr(self, _ATTR, False):
        await _ORIGINAL["_transmit"](self)
        return
    try:
        await _transmit_bundled(self)
    except (ConnectionError, SSL.Error) as exc:
        if not _dtls_closing(self.transport):
            raise
        # The DTLS transport closed under the association (a peer dropped or closing): no
        # chunk can go anywhere, and the association's own close reports the end. aiortc's
        # retransmission timer runs this as a task nobody awaits (``_t3_expired``), so raising
        # would only log "Task exception was never retrieved".
        log.debug("sctp: transmit after the transport closed: %s", exc)


def _dtls_closing(dtls: Any) -> bool:
    """The DTLS transport is closed, or closing: aiortc's ``stop()`` shuts its SSL session
    down at once, but its state says "connected" until its receive task has ended, and a
    send in between fails with OpenSSL's "protocol is shutdown"."""
    if dtls.state != "connected":
        return True
    session = getattr(dtls, "_ssl", None)
    return session is not None and session.get_shutdown() != 0


async def _transmit_bundled(self: Any) -> None:
    """aiortc 1.16's ``_transmit``, line for line, except that DATA chunks go out bundled."""
    if getattr(self, _DEFER, False):
        return None
    if self._forward_tsn_chunk is not None:
        await self._send_chunk(self._forward_tsn_chunk)
        self._forward_tsn_chunk = None
        if not self._t3_handle:
            self._t3_start()
    burst = (2 if self._fast_recovery_exit is not None else 4) * sctp.USERDATA_MAX_LENGTH
    cwnd = min(self._flight_size + burst, self._cwnd)
    packets = _Packets(self)
    # RFC 9260 §7.2.4 step 3: on entering fast recovery, the earliest chunks marked for
    # retransmission that fit in one packet go out whatever cwnd says (aiortc: one chunk).
    exempt = self._fast_recovery_transmit
    self._fast_recovery_transmit = False
    retransmit_earliest = True
    for chunk in self._sent_queue:
        if chunk._retransmit:
            data = bytes(chunk)
            if not (exempt and packets.sent == 0 and packets.fits(data)) and self._flight_size >= cwnd:
                await packets.flush()
                return None
            self._flight_size_increase(chunk)
            chunk._misses = 0
            chunk._retransmit = False
            chunk._sent_count += 1
            _stamp(self, chunk, retransmission=True)
            await packets.add(data)
            if retransmit_earliest:
                self._t3_restart()
        retransmit_earliest = False
    while self._outbound_queue and self._flight_size < cwnd:
        chunk = self._outbound_queue.popleft()
        self._sent_queue.append(chunk)
        self._flight_size_increase(chunk)
        chunk._sent_count += 1
        chunk._sent_time = time.time()
        _stamp(self, chunk, retransmission=False)
        await packets.add(bytes(chunk))
        if not self._t3_handle:
            self._t3_start()
    await packets.flush()
    return None


def _stamp(self: Any, chunk: Any, *, retransmission: bool) -> None:
    """Number a DATA chunk's transmission on its association (:data:`SENT_ORDER`), and note when
    the association last retransmitted (:data:`RETRANSMITTED_AT`): loss recovery
    (:mod:`.aiortc_fork_rtx`) tells from these which SACK can say what about which chunk."""
    order = getattr(self, SENT_ORDER, 0) + 1
    setattr(self, SENT_ORDER, order)
    setattr(chunk, SENT_ORDER, order)
    if retransmission:
        setattr(self, RETRANSMITTED_AT, time.time())


class _Packets:
    """Chunks gathered into SCTP packets of at most ``SCTP_MAX_PACKET_LENGTH`` bytes, each sent
    as soon as the next chunk would not fit (and the last by :meth:`flush`)."""

    def __init__(self, transport: Any) -> None:
        self.transport = transport
        self.chunks: list[bytes] = []
        self.size = sctp.SCTP_COMMON_HEADER_LENGTH
        self.sent = 0
        """Packets sent so far."""

    def fits(self, data: bytes) -> bool:
        """Whether ``data`` goes into the packet being gathered (an empty one takes any chunk)."""
        return not self.chunks or self.size + len(data) <= sctp.SCTP_MAX_PACKET_LENGTH

    async def add(self, data: bytes) -> None:
        """Gather one chunk (already padded to 4 bytes), sending the packet first if it is full."""
        if not self.fits(data):
            await self.flush()
        self.chunks.append(data)
        self.size += len(data)

    async def flush(self) -> None:
        """Send the packet gathered so far, if any."""
        if self.chunks:
            chunks, self.chunks, self.size = self.chunks, [], sctp.SCTP_COMMON_HEADER_LENGTH
            self.sent += 1
            await _send_packet(self.transport, chunks)


async def _send_packet(self: Any, chunks: list[bytes]) -> None:
    """One SCTP packet holding ``chunks`` (each already padded to 4 bytes), as aiortc frames one."""
    header = pack("!HHL", self._local_port, self._remote_port, self._remote_verification_tag)
    body = b"".join(chunks)
    checksum = getattr(sctp, "crc32c")(header + b"\x00\x00\x00\x00" + body)
    await self.transport._send_data(header + pack("<L", checksum) + body)
