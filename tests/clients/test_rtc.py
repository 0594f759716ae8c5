"""The WebRTC client: re-signaling, resume, heartbeat, and accounting across reconnects."""

from __future__ import annotations

import asyncio

import pytest
from aiortc import RTCPeerConnection

from rtplay.clients import rtc
from rtplay.clients.rtc import (
    DEFAULT_PING_INTERVAL_S,
    DEFAULT_PING_TIMEOUT_S,
    RTCClient,
    ice_host_of,
)
from rtplay.model.events import Connected, Disconnected, Event, RetryScheduled, State
from rtplay.model.retry import ExponentialBackoff
from rtplay.protocol.faults import Kind
from servers.runner import Server
from tests.conftest import rtc_server, running, wait_until

pytestmark = pytest.mark.timeout(15)


def make_client(
    srv: Server,
    events: list[Event] | None = None,
    ping_interval: float = DEFAULT_PING_INTERVAL_S,
    ping_timeout: float = DEFAULT_PING_TIMEOUT_S,
) -> RTCClient:
    """A client recording its events, retrying within a fraction of a second."""
    emit = events.append if events is not None else None
    retry = ExponentialBackoff(initial=0.05, maximum=0.3)
    return RTCClient(srv.http_url, emit, retry=retry, ping_interval=ping_interval, ping_timeout=ping_timeout)


def is_open(client: RTCClient, connects: int = 1) -> bool:
    return client.state is State.OPEN and client.conn.connects >= connects


def test_ice_host_follows_the_signaling_url() -> None:
    assert ice_host_of("http://127.0.0.1:8080") == "127.0.0.1"
    assert ice_host_of("http://localhost:8080") == "127.0.0.1"
    assert ice_host_of("http://[::1]:8080") == "::1"
    with pytest.raises(ValueError, match="IP address"):
        ice_host_of("http://example.org:8080")


async def test_connected_detail_and_setup_time() -> None:
    events: list[Event] = []
    async with rtc_server() as (srv, _), running(make_client(srv, events, ping_interval=0.1)) as client:
        await wait_until(lambda: is_open(client), what="open")
        (connected,) = [e for e in events if isinstance(e, Connected)]
        assert client.setup_ms is not None and 0 < client.setup_ms < 5000
        assert connected.detail == f"since=0, set-up {client.setup_ms:.0f} ms"
        await wait_until(lambda: client.rtt_ms is not None, what="a pong")  # heartbeat round trip


async def test_drop_resignals_and_resumes_without_loss_or_duplicates() -> None:
    events: list[Event] = []
    async with rtc_server() as (srv, manager), running(make_client(srv, events)) as client:
        await wait_until(lambda: is_open(client), what="open")
        srv.set_rate(200)
        await wait_until(lambda: client.cursor >= 100, what="100 delivered")
        assert srv.drop("rtc") == 1  # the registry reaches rtc peers too
        await wait_until(lambda: is_open(client, connects=2), what="reconnected")
        target = srv.hub.last_seq + 50
        await wait_until(lambda: client.cursor >= target, what="more after the reconnect")
        srv.set_rate(0)
        await wait_until(lambda: client.cursor == srv.hub.last_seq, what="reliable caught up")
        reliable = client.stats["reliable"].tracker
        assert reliable.delivered == srv.hub.last_seq
        assert (reliable.missing, reliable.duplicates, reliable.lost_to_reset) == (0, 0, 0)
        assert client.conn.reconnects == 1
        reasons = [e.reason for e in events if isinstance(e, Disconnected)]
        assert reasons and "closed" in reasons[0]
        resumed = [e.detail for e in events if isinstance(e, Connected)][1]
        assert resumed.startswith("since=") and resumed != "since=0"
        assert any(isinstance(e, RetryScheduled) and e.policy.startswith("exp") for e in events)


async def test_the_retry_wait_starts_when_the_end_is_noticed_not_after_the_old_peers_teardown(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A browser's ``close()`` returns at once, so the page's retry wait (and the seqs its
    unreliable channel misses) runs from the moment it noticed; rtplay's waited for aiortc's
    teardown first (0.4-17 ms measured under a drop, up to CLOSE_TIMEOUT_S), and lost more."""
    release = asyncio.Event()
    closes: list[str] = []

    class SlowToClose(RTCPeerConnection):
        async def close(self) -> None:
            closes.append("started")
            try:
                await release.wait()
                await super().close()
            finally:
                closes.append("ended")

    monkeypatch.setattr(rtc, "RTCPeerConnection", SlowToClose)  # the client's peers only
    events: list[Event] = []
    async with rtc_server() as (srv, _), running(make_client(srv, events)) as client:
        await wait_until(lambda: is_open(client), what="open")
        assert srv.drop("rtc") == 1
        await wait_until(lambda: any(isinstance(e, RetryScheduled) for e in events), what="the retry decision")
        # Noticed, decided and waiting while the old peer is still closing (aiortc may call
        # close() itself too, hence "started" once or twice).
        assert "started" in closes and "ended" not in closes
        assert [type(e) for e in events if isinstance(e, Disconnected | RetryScheduled)] == [Disconnected, RetryScheduled]
        release.set()
        await wait_until(lambda: is_open(client, connects=2), what="reconnected")
        assert closes.count("ended") == closes.count("started")  # the next attempt began after the teardown


async def test_keeps_retrying_while_signaling_is_down_and_loses_nothing() -> None:
    events: list[Event] = []
    async with rtc_server() as (srv, manager), running(make_client(srv, events)) as client:
        await wait_until(lambda: is_open(client), what="open")
        for _ in range(20):
            srv.broadcaster.publish()
        await wait_until(lambda: client.cursor == 20, what="20 delivered")
        await srv.stop_http()
        srv.drop("rtc")
        await wait_until(lambda: client.attempts >= 4, what="retries against a refused listener")
        refused = [e for e in events if isinstance(e, Disconnected) and "connection refused" in e.reason]
        assert len(refused) >= 2 and client.state is not State.OPEN
        for _ in range(30):  # published while the client is away: resumed on reliable...
            srv.broadcaster.publish()
        await srv.start_http()
        await wait_until(lambda: is_open(client, connects=2), what="reconnected")
        for _ in range(10):
            srv.broadcaster.publish()
        await wait_until(lambda: client.cursor == 60, what="everything on reliable")
        await wait_until(lambda: client.stats["unreliable"].tracker.highest == 60, what="live on unreliable")
        reliable, unreliable = client.stats["reliable"], client.stats["unreliable"]
        assert reliable.tracker.delivered == 60 and reliable.lost(60) == 0 and reliable.tracker.duplicates == 0
        # ...but never sent on unreliable, which carries only what is published while connected.
        assert unreliable.tracker.delivered == 30 and unreliable.lost(60) == 0


async def test_error_fault_is_retried_after_retry_after() -> None:
    events: list[Event] = []
    async with rtc_server() as (srv, manager):
        fault = srv.faults.add(Kind.ERROR, "rtc", 503, now=srv.ctx.clock())
        srv.ctx.config.error_retry_after_s = 1
        async with running(make_client(srv, events)) as client:
            await wait_until(lambda: any(isinstance(e, RetryScheduled) for e in events), what="a retry")
            retry = next(e for e in events if isinstance(e, RetryScheduled))
            assert (retry.delay_s, retry.policy) == (1, "Retry-After")
            assert client.state_detail == "Retry-After"
            assert any(isinstance(e, Disconnected) and "HTTP 503" in e.reason for e in events)
            srv.faults.clear(fault.id)
            await wait_until(lambda: is_open(client), what="open once the fault clears")


async def test_heartbeat_detects_a_stall_and_recovers() -> None:
    events: list[Event] = []
    async with rtc_server() as (srv, manager):
        client = make_client(srv, events, ping_interval=0.2, ping_timeout=0.4)
        async with running(client):
            await wait_until(lambda: is_open(client), what="open")
            srv.set_rate(50)
            await wait_until(lambda: client.cursor >= 10, what="10 delivered")
            fault = srv.faults.add(Kind.STALL, "rtc", now=srv.ctx.clock())
            await wait_until(
                lambda: any(isinstance(e, Disconnected) and "no pong" in e.reason for e in events),
                what="the heartbeat to expire",
            )
            srv.faults.clear(fault.id)
            await wait_until(lambda: is_open(client, connects=2), what="reconnected after the stall")
            srv.set_rate(0)
            await wait_until(lambda: client.cursor == srv.hub.last_seq, what="reliable caught up")
            reliable = client.stats["reliable"].tracker
            assert (reliable.delivered, reliable.missing, reliable.duplicates) == (srv.hub.last_seq, 0, 0)


async def test_an_evicted_resume_point_is_reported_as_a_reset() -> None:
    async with rtc_server() as (srv, manager), running(make_client(srv)) as client:
        await wait_until(lambda: is_open(client), what="open")
        srv.broadcaster.publish()
        await wait_until(lambda: client.cursor == 1, what="seq 1")
        await srv.stop_http()
        srv.drop("rtc")
        await wait_until(lambda: client.state is not State.OPEN, what="disconnected")
        for _ in range(9):
            srv.broadcaster.publish()
        srv.hub.forget()  # a crash: seqs 2-10 can never be replayed
        srv.broadcaster.publish()
        await srv.start_http()
        await wait_until(lambda: client.cursor == 11, what="seq 11 after the reset")
        reliable = client.stats["reliable"].tracker
        assert reliable.lost_to_reset == 9 and reliable.missing == 0 and reliable.delivered == 2
