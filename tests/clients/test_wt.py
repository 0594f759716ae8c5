"""The WebTransport client against the real HTTP/3 listener on 127.0.0.1 (ephemeral ports)."""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import AsyncIterator

import pytest

from rtplay.clients.wt import DATAGRAM, STREAM, LineBuffer, WebTransportClient
from rtplay.model.events import (
    Connected,
    Disconnected,
    Event,
    ResetReceived,
    RetryScheduled,
    State,
)
from rtplay.model.retry import ExponentialBackoff
from rtplay.protocol.envelope import ProtocolError
from rtplay.protocol.faults import Kind
from rtplay.protocol.wt import close_capsule, parse_close_capsule
from servers.core.cert import Certificate, generate_certificate
from servers.quic.server import QuicListener
from servers.runner import Server, ServerConfig
from tests.conftest import in_background, wait_until

HOST = "127.0.0.1"


@contextlib.asynccontextmanager
async def running(
    port: int, cert_der: bytes, events: list[Event] | None = None, **kw: float
) -> AsyncIterator[WebTransportClient]:
    """A client with a quick backoff (0.1 s doubling to 0.5 s), cancelled on exit."""
    retry = ExponentialBackoff(initial=0.1, maximum=0.5, rng=random.Random(3))
    emit = events.append if events is not None else None
    client = WebTransportClient(HOST, port, cert_der, emit, retry=retry, **kw)
    async with in_background(client.run()):
        yield client


async def settle(server: Server, client: WebTransportClient, timeout: float = 5.0) -> int:
    """Stop publishing and wait for the stream to have everything; the published count."""
    server.set_rate(0)
    published = server.hub.last_seq
    await wait_until(lambda: client.stats[STREAM].tracker.highest >= published, timeout, "the stream")
    return published


def assert_stream_complete(client: WebTransportClient, published: int) -> None:
    tracker = client.stats[STREAM].tracker
    assert client.stats[STREAM].lost(published) == 0
    assert (tracker.duplicates, tracker.out_of_order) == (0, 0)
    assert tracker.delivered + tracker.lost_to_reset == published


# --- pure pieces ---------------------------------------------------------------------------


def test_line_buffer_joins_chunks_and_bounds_lines() -> None:
    lines = LineBuffer(limit=10)
    assert lines.feed(b'{"a"') == []
    assert lines.feed(b':1}\n{"b":2}\n\n{"c"') == [b'{"a":1}', b'{"b":2}']
    assert lines.feed(b":3}\n") == [b'{"c":3}']
    with pytest.raises(ProtocolError):
        lines.feed(b"x" * 11)
    with pytest.raises(ProtocolError):
        LineBuffer(limit=4).feed(b"ok\n12345")


def test_close_capsule_reason_round_trips() -> None:
    assert parse_close_capsule(close_capsule(2, "consumer too slow")) == "consumer too slow (code 2)"
    assert parse_close_capsule(close_capsule(0, "")) == "code 0"
    assert parse_close_capsule(close_capsule(1, "cut")[:-1]) is None
    assert parse_close_capsule(b"") is None


def test_report_has_both_channels(cert: Certificate) -> None:
    client = WebTransportClient(HOST, 4433, cert.der)
    assert client.base_url == "https://127.0.0.1:4433" and client.path == "/wt?since=0"
    report = client.report(0)
    assert set(report["channels"]) == {STREAM, DATAGRAM}  # type: ignore[arg-type]


# --- delivery --------------------------------------------------------------------------------


async def test_stream_in_order_without_loss_at_200_per_s(
    server: Server, listener: QuicListener, cert: Certificate
) -> None:
    async with running(listener.port, cert.der) as client:
        await wait_until(lambda: client.state is State.OPEN, 5, "a session")
        server.set_rate(200)
        await wait_until(lambda: server.hub.last_seq >= 200, 5, "a second of messages")
        published = await settle(server, client)
        assert_stream_complete(client, published)
        assert client.conn.connects == 1
        assert client.stats[STREAM].wire_bytes > 0


async def test_datagrams_arrive_on_clean_loopback(
    server: Server, listener: QuicListener, cert: Certificate
) -> None:
    async with running(listener.port, cert.der) as client:
        await wait_until(lambda: client.state is State.OPEN, 5, "a session")
        server.set_rate(200)
        await wait_until(lambda: server.hub.last_seq >= 200, 5, "a second of messages")
        published = await settle(server, client)
        await wait_until(lambda: client.stats[DATAGRAM].tracker.highest == published, 2, "the last one")
        datagram = client.stats[DATAGRAM]
        assert datagram.tracker.delivered >= 0.95 * published
        assert datagram.latency.percentile(50) is not None
        channels = client.report(published)["channels"]
        assert channels[DATAGRAM]["delivered"] == datagram.tracker.delivered  # type: ignore[index]


async def test_ping_measures_round_trip(
    server: Server, listener: QuicListener, cert: Certificate
) -> None:
    async with running(listener.port, cert.der, ping_interval=0.05, ping_timeout=1.0) as client:
        await wait_until(lambda: client.rtt_ms is not None, 5, "a pong")
        assert client.rtt_ms is not None and 0 <= client.rtt_ms < 1000


# --- recovery --------------------------------------------------------------------------------


async def test_reconnects_after_drop_and_resumes_the_stream(
    server: Server, listener: QuicListener, cert: Certificate
) -> None:
    events: list[Event] = []
    async with running(listener.port, cert.der, events) as client:
        server.set_rate(200)
        await wait_until(lambda: client.stats[STREAM].tracker.highest >= 50, 5, "some messages")
        assert server.ctx.registry.drop("wt") == 1
        await wait_until(lambda: client.conn.reconnects == 1, 5, "the reconnect")
        resumed = [e.detail for e in events if isinstance(e, Connected)][-1]
        assert resumed != "since=0"
        target = server.hub.last_seq + 50
        await wait_until(lambda: client.stats[STREAM].tracker.highest >= target, 5, "more messages")
        published = await settle(server, client)
        assert_stream_complete(client, published)
        assert client.stats[STREAM].tracker.lost_to_reset == 0
        assert any(isinstance(e, Disconnected) and "dropped" in e.reason for e in events)
        # What was published between the two sessions was never sent as a datagram: at most
        # the few in flight when the connection was cut count as datagram losses.
        await wait_until(lambda: client.stats[DATAGRAM].tracker.highest == published, 2, "the last one")
        assert client.stats[DATAGRAM].lost(published) <= 5


async def test_backs_off_through_an_outage_and_recovers(
    server: Server, listener: QuicListener, cert: Certificate
) -> None:
    events: list[Event] = []
    async with running(listener.port, cert.der, events) as client:
        server.set_rate(100)
        await wait_until(lambda: client.stats[STREAM].tracker.highest >= 20, 5, "some messages")
        await listener.stop()
        retries = lambda: sum(isinstance(e, RetryScheduled) for e in events)  # noqa: E731
        # Down for ~2 s: the first retry is refused at once, later ones wait longer each time.
        await wait_until(lambda: retries() >= 5, 5, "several refused retries")
        refused = [e.reason for e in events if isinstance(e, Disconnected)]
        assert any("refused" in reason for reason in refused), refused
        delays = [e.delay_s for e in events if isinstance(e, RetryScheduled)]
        assert max(delays) > min(delays)  # backing off, not hammering
        await listener.start()
        await wait_until(lambda: client.conn.reconnects == 1, 5, "the reconnect")
        published = await settle(server, client)
        assert_stream_complete(client, published)
        assert client.conn.downtime(client.clock()) > 0


async def test_resume_older_than_the_replay_buffer_counts_a_reset(cert: Certificate) -> None:
    srv = Server(ServerConfig(rate=0, replay_capacity=20))
    await srv.start()
    quic = QuicListener(srv.ctx, HOST, 0, cert)
    await quic.start()
    events: list[Event] = []
    try:
        async with running(quic.port, cert.der, events) as client:
            await wait_until(lambda: client.state is State.OPEN, 5, "a session")
            for _ in range(5):
                srv.broadcaster.publish()
            await wait_until(lambda: client.stats[STREAM].tracker.highest == 5, 5, "5 messages")
            await quic.stop()
            for _ in range(50):  # while the client is away, more than the buffer holds
                srv.broadcaster.publish()
            await quic.start()
            await wait_until(lambda: client.stats[STREAM].tracker.highest == 55, 5, "the resume")
            tracker = client.stats[STREAM].tracker
            assert tracker.lost_to_reset == 30  # 6..35 are gone; 36..55 were replayed
            assert tracker.delivered == 25 and client.stats[STREAM].lost(55) == 0
            assert [e.lost for e in events if isinstance(e, ResetReceived)] == [30]
    finally:
        await quic.stop()
        await srv.stop()


async def test_stalled_server_is_detected_by_the_heartbeat(
    server: Server, listener: QuicListener, cert: Certificate
) -> None:
    events: list[Event] = []
    async with running(listener.port, cert.der, events, ping_interval=0.2, ping_timeout=0.3) as client:
        server.set_rate(50)
        await wait_until(lambda: client.stats[STREAM].tracker.highest >= 10, 5, "some messages")
        stall = server.ctx.faults.add(Kind.STALL, "wt", now=server.ctx.clock())
        await wait_until(lambda: any(isinstance(e, Disconnected) for e in events), 5, "the timeout")
        reason = next(e.reason for e in events if isinstance(e, Disconnected))
        assert "no pong" in reason, reason
        server.ctx.faults.clear(stall.id)
        reopened = lambda: client.state is State.OPEN and client.conn.reconnects >= 1  # noqa: E731
        await wait_until(reopened, 5, "a new session")
        published = await settle(server, client)
        assert_stream_complete(client, published)


async def test_refused_connect_is_an_http_status_then_backoff(
    server: Server, listener: QuicListener, cert: Certificate
) -> None:
    events: list[Event] = []
    fault = server.ctx.faults.add(Kind.ERROR, "wt", 503, now=server.ctx.clock())
    async with running(listener.port, cert.der, events) as client:
        refusals = lambda: sum(isinstance(e, RetryScheduled) for e in events)  # noqa: E731
        await wait_until(lambda: refusals() >= 2, 5, "two refusals")
        assert {e.reason for e in events if isinstance(e, Disconnected)} == {"HTTP 503"}
        assert client.conn.connects == 0
        server.ctx.faults.clear(fault.id)
        await wait_until(lambda: client.state is State.OPEN, 5, "the session")


async def test_trusts_only_the_pinned_certificate(server: Server, listener: QuicListener) -> None:
    events: list[Event] = []
    stranger = generate_certificate()
    async with running(listener.port, stranger.der, events) as client:
        await wait_until(lambda: any(isinstance(e, Disconnected) for e in events), 5, "the refusal")
        assert client.conn.connects == 0
        reason = next(e.reason for e in events if isinstance(e, Disconnected))
        assert "certificate" in reason.lower() or "0x12a" in reason, reason


async def test_without_a_certificate_the_client_fails(server: Server, listener: QuicListener) -> None:
    events: list[Event] = []
    client = WebTransportClient(HOST, listener.port, b"", events.append)
    await asyncio.wait_for(client.run(), 5)
    assert client.state is State.FAILED and "certificate" in client.state_detail


async def test_offline_client_goes_silent_then_recovers(
    server: Server, listener: QuicListener, cert: Certificate
) -> None:
    events: list[Event] = []
    async with running(listener.port, cert.der, events, ping_interval=0.2, ping_timeout=0.3) as client:
        server.set_rate(50)
        await wait_until(lambda: client.stats[STREAM].tracker.highest >= 10, 5, "some messages")
        client.network.set_down(["wt"])  # every UDP datagram in or out of the client is lost from now on
        reasons = lambda: [e.reason for e in events if isinstance(e, Disconnected)]  # noqa: E731
        await wait_until(lambda: any("down" in r for r in reasons()), 5, "a refused attempt")
        assert "no pong" in reasons()[0], reasons()
        client.network.set_down([])
        reopened = lambda: client.state is State.OPEN and client.conn.reconnects >= 1  # noqa: E731
        await wait_until(reopened, 5, "a new session")
        published = await settle(server, client)
        assert_stream_complete(client, published)


def test_datagrams_before_the_live_line_wait_for_it(cert: Certificate) -> None:
    client = WebTransportClient(HOST, 4433, cert.der)
    client.clock = lambda: 100.0
    client.on_datagram(b'{"seq": 42, "t": 1.0, "data": "x"}')  # overtook the stream
    assert client.stats[DATAGRAM].tracker.delivered == 0
    client.on_stream_data(b'{"live": 41}\n{"seq": 40, "t": 1.0, "data": "x"}\n', ended=False)
    datagram = client.stats[DATAGRAM]
    assert (datagram.tracker.delivered, datagram.tracker.highest, datagram.lost(42)) == (1, 42, 1)
    client.on_datagram(b'{"seq": 43, "t": 1.0, "data": "x"}')
    assert datagram.tracker.delivered == 2 and client.cursor == 40


def test_an_ip_literal_needs_no_resolver() -> None:
    """The reconnect's first packet does not wait for the executor's resolver on a literal."""
    import socket

    from rtplay.clients.wt_conn import literal_address

    assert literal_address("127.0.0.1", 4433) == (socket.AF_INET, ("127.0.0.1", 4433))
    assert literal_address("::1", 4433) == (socket.AF_INET6, ("::1", 4433))
    assert literal_address("[::1]", 4433) == (socket.AF_INET6, ("::1", 4433))
    assert literal_address("localhost", 4433) is None
    assert literal_address("example.test", 4433) is None


async def test_open_connection_to_a_literal_does_not_resolve(monkeypatch: pytest.MonkeyPatch) -> None:
    """Against a server that is not there: the attempt fails on the network, never in the
    resolver (which would take a thread hop before the first packet)."""
    import socket

    from rtplay.clients import wt_conn

    loop = asyncio.get_running_loop()

    async def no_resolver(*args: object, **kw: object) -> object:
        raise AssertionError(f"getaddrinfo{args} for an IP literal")

    monkeypatch.setattr(loop, "getaddrinfo", no_resolver)
    configuration = wt_conn.QuicConfiguration(is_client=True, alpn_protocols=["h3"], idle_timeout=1.0)
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nobody listens there: ICMP port unreachable ends the attempt
    with pytest.raises(wt_conn.SessionEnded):
        async with asyncio.timeout(5):
            async with wt_conn.open_connection("127.0.0.1", port, configuration):
                pass
