"""aioquic's internals rtplay reads, on a client and a server QUIC connection joined in
memory (no sockets; ``now`` passed in): what each function reports is what the connection
does, and the start-up check names what a changed aioquic lacks."""

from __future__ import annotations

import ssl
from collections.abc import Callable

import aioquic
import pytest
from aioquic.asyncio.server import QuicServer
from aioquic.h3.connection import H3_ALPN, H3Connection
from aioquic.h3.events import WebTransportStreamDataReceived
from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.connection import QuicConnection
from aioquic.tls import Epoch

from rtplay.compat import IncompatibleLibrary
from rtplay.compat import aioquic as compat
from servers.core.cert import Certificate
from tests.compat.quic_pair import Pair, deliver, h3_session, joined


@pytest.fixture
def pair(cert: Certificate) -> Pair:
    return joined(cert)


def test_the_installed_aioquic_passes_the_start_up_check() -> None:
    compat.check()


def test_an_aioquic_without_the_servers_internals_is_refused_by_name(monkeypatch: pytest.MonkeyPatch) -> None:
    def init(self: QuicServer, *args: object, **kwargs: object) -> None:
        vars(self)["connections"] = {}  # kept under another name

    monkeypatch.setattr(QuicServer, "__init__", init)
    expected = rf"aioquic {aioquic.__version__} lacks QuicServer._protocols, QuicServer._retry"
    with pytest.raises(IncompatibleLibrary, match=expected):
        compat.check()


def test_buffered_stream_bytes_fall_to_zero_when_the_peer_acknowledges(pair: Pair) -> None:
    stream = pair.client.get_next_available_stream_id()
    assert compat.stream_send_state(pair.client, stream).buffered == 0  # not opened yet
    pair.client.send_stream_data(stream, b"x" * 5000)
    assert compat.stream_send_state(pair.client, stream).buffered == 5000
    pair.to_server()  # sent, not yet acknowledged
    assert compat.stream_send_state(pair.client, stream).buffered == 5000
    pair.settle()
    assert compat.stream_send_state(pair.client, stream).buffered == 0


def test_send_state_says_when_bytes_wait_for_the_peers_credit(cert: Certificate) -> None:
    pair = joined(cert, server_window=1000)
    stream = pair.client.get_next_available_stream_id()
    assert compat.stream_send_state(pair.client, stream) == compat.SendState(0, False, ())  # not opened
    pair.client.send_stream_data(stream, b"x" * 5000)
    pair.client.send_datagram_frame(b"d" * 100)
    assert compat.buffered_bytes(pair.client) == compat.connection_send_state(pair.client).buffered == 5100
    pair.to_server()  # the first 1000 bytes leave; the other 4000 need more credit
    before = compat.stream_send_state(pair.client, stream)
    assert (before.buffered, before.blocked) == (5000, True)
    assert compat.connection_send_state(pair.client).blocked
    pair.settle()  # the server acknowledges, raises its credit as it reads, and all goes
    after = compat.stream_send_state(pair.client, stream)
    assert (after.buffered, after.blocked) == (0, False) and after.progress != before.progress
    assert compat.connection_send_state(pair.client).buffered == 0


def test_a_reset_stream_waits_for_nothing_and_its_buffer_goes(cert: Certificate) -> None:
    pair = joined(cert, server_window=1000)
    stream = pair.client.get_next_available_stream_id(is_unidirectional=True)  # like our envelope stream
    pair.client.send_stream_data(stream, b"x" * 5000)
    pair.to_server()
    pair.client.reset_stream(stream, 0x10C)
    assert not compat.stream_send_state(pair.client, stream).blocked  # nothing more will be sent
    pair.settle()  # the RESET_STREAM is acknowledged: the stream and its buffer are gone
    assert compat.buffered_bytes(pair.client) == 0


def test_pending_datagrams_counts_what_waits_to_be_sent(pair: Pair) -> None:
    assert compat.pending_datagrams(pair.client) == 0
    for n in range(3):
        pair.client.send_datagram_frame(b"d%d" % n)
    assert compat.pending_datagrams(pair.client) == 3
    pair.to_server()
    assert compat.pending_datagrams(pair.client) == 0


def test_an_ack_is_owed_after_a_packet_and_ack_now_sends_it_at_once(pair: Pair) -> None:
    assert compat.ack_state(pair.server) == (False, 1)  # everything acknowledged: one range kept
    pair.client.send_stream_data(0, b"hello")
    pair.to_server()
    owed, ranges = compat.ack_state(pair.server)
    assert owed and ranges >= 1
    assert pair.to_client() == 0  # aioquic waits its ACK delay before answering
    compat.ack_now(pair.server, pair.now)
    assert pair.to_client() == 1  # the ACK, now
    assert compat.ack_state(pair.server)[0] is False


def test_the_ack_delay_decides_when_an_owed_ack_is_due(pair: Pair) -> None:
    def due_after(delay: float | None) -> float:
        if delay is not None:
            compat.set_ack_delay(pair.server, delay)
        pair.client.send_stream_data(0, b"x")
        pair.to_server()
        space = pair.server._spaces[Epoch.ONE_RTT]
        assert space.ack_at is not None  # (read directly: what the compat function must move)
        gap = space.ack_at - pair.now
        pair.settle()
        return gap

    assert due_after(None) == pytest.approx(0.001)  # aioquic's own: K_GRANULARITY
    assert due_after(0.02) == pytest.approx(0.02)


def test_a_connection_without_its_one_rtt_space_owes_nothing() -> None:
    assert compat.ack_state(QuicConnection(configuration=QuicConfiguration(is_client=True))) == (False, 0)


def answers_on_a_bidi_stream(pair: Pair, open_stream: Callable[[H3Connection, int], int]) -> list[bytes]:
    """Open a bidi WebTransport stream with ``open_stream``, send a line, let the server echo
    it back; what the client's H3 hands up as WebTransport stream data."""
    client, server, session_id = h3_session(pair)
    stream_id = open_stream(client, session_id)
    pair.client.send_stream_data(stream_id, b'{"ping": 1}\n')
    for event in deliver(pair.to_server, pair.server, server):
        if isinstance(event, WebTransportStreamDataReceived):
            pair.server.send_stream_data(event.stream_id, b'{"pong": 1}\n')
    return [
        e.data for e in deliver(pair.to_client, pair.client, client)
        if isinstance(e, WebTransportStreamDataReceived) and e.stream_id == stream_id
    ]


def test_without_the_workaround_answers_on_our_bidi_stream_vanish(pair: Pair) -> None:
    """The baseline that makes :func:`open_bidi_stream` necessary: aioquic parses the answer as
    HTTP/3 frames and drops it."""
    def plain(h3: H3Connection, session_id: int) -> int:
        return h3.create_webtransport_stream(session_id, is_unidirectional=False)

    assert answers_on_a_bidi_stream(pair, plain) == []


def test_answers_on_a_bidi_stream_it_opens_arrive_as_webtransport_data(pair: Pair) -> None:
    assert answers_on_a_bidi_stream(pair, compat.open_bidi_stream) == [b'{"pong": 1}\n']


async def test_a_servers_connections_are_listed_and_known_by_their_ids(cert: Certificate) -> None:
    """A real aioquic server and client on 127.0.0.1: what the compat functions read of the
    server is the one connection the client made."""
    from aioquic.asyncio.client import connect
    from aioquic.asyncio.server import serve

    config = QuicConfiguration(is_client=False, alpn_protocols=H3_ALPN)
    config.certificate, config.private_key = cert.certificate, cert.private_key
    server = await serve("127.0.0.1", 0, configuration=config)
    try:
        assert compat.server_protocols(server) == [] and compat.connection_count(server) == 0
        assert compat.host_cid_length(server) == config.connection_id_length
        assert server._transport is not None
        port = server._transport.get_extra_info("sockname")[1]
        client_config = QuicConfiguration(is_client=True, alpn_protocols=H3_ALPN, verify_mode=ssl.CERT_NONE)
        async with connect("127.0.0.1", port, configuration=client_config) as client:
            await client.ping()
            (protocol,) = compat.server_protocols(server)
            assert compat.handshake_complete(protocol)
            assert compat.connection_count(server) >= 1
            host_cid = client._quic._peer_cid.cid
            assert compat.protocol_for(server, host_cid) is protocol
            assert compat.protocol_for(server, b"\0" * 8) is None
            compat.rearm_timer(protocol)  # re-arms for the connection's own next deadline
            assert protocol._timer_at == protocol._quic.get_timer()
    finally:
        server.close()


async def test_use_retry_switches_address_validation_on_and_off_for_new_connections(cert: Certificate) -> None:
    """aioquic decides at construction; after ``use_retry`` a new client is sent a Retry first
    (RFC 9000 §8.1.2), and after ``use_retry(server, None)`` it is not."""
    from aioquic.asyncio.client import connect
    from aioquic.asyncio.server import serve
    from aioquic.quic.retry import QuicRetryTokenHandler

    config = QuicConfiguration(is_client=False, alpn_protocols=H3_ALPN)
    config.certificate, config.private_key = cert.certificate, cert.private_key
    server = await serve("127.0.0.1", 0, configuration=config)
    try:
        assert server._transport is not None
        port = server._transport.get_extra_info("sockname")[1]

        async def retries() -> int:
            client_config = QuicConfiguration(is_client=True, alpn_protocols=H3_ALPN, verify_mode=ssl.CERT_NONE)
            async with connect("127.0.0.1", port, configuration=client_config) as client:
                await client.ping()
                return client._quic._retry_count

        assert await retries() == 0
        compat.use_retry(server, QuicRetryTokenHandler())
        assert await retries() == 1
        compat.use_retry(server, None)
        assert await retries() == 0
    finally:
        server.close()


def test_a_close_from_the_peer_is_known_at_once_though_aioquic_reports_it_after_draining(pair: Pair) -> None:
    pair.server.close(error_code=0, reason_phrase="stopped")
    pair.to_client()
    events = []
    while (event := pair.client.next_event()) is not None:
        events.append(event)
    # aioquic holds ConnectionTerminated for its draining period (three probe timeouts) ...
    assert not any(type(e).__name__ == "ConnectionTerminated" for e in events), events
    # ... but the close is there to read: the wt client ends on it at once, as a browser does.
    closed = compat.peer_closed(pair.client)
    assert closed is not None and closed.reason_phrase == "stopped"
    assert compat.peer_closed(pair.server) is None  # our own close is not the peer's


def test_a_live_connection_has_no_peer_close(pair: Pair) -> None:
    assert compat.peer_closed(pair.client) is None and compat.peer_closed(pair.server) is None
