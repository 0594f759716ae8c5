"""The eight figures that used to be wrong, each pinned by a test (all fail on the old model).

1 still-recoverable messages counted lost / settle ignored; 2 the comparison view's "lost";
3 unreliable losses while down; 4 per-fault ownership; 5 late fill of a written-off gap;
6 downtime past the duration; 7 a crash overlapped by an outage; 8 wire bytes and pongs.
"""

from __future__ import annotations

import asyncio
import dataclasses
import io
import sys

import pytest

from rtplay.cli.headless import HeadlessOptions, render_table, run_headless
from rtplay.clients.base import MAIN
from rtplay.clients.longpoll import LongPollClient
from rtplay.clients.ws import WebSocketClient
from rtplay.clients.wt import DATAGRAM, WebTransportClient
from rtplay.engine.session import SessionConfig
from rtplay.model.channels import ChannelStats, ConnectionStats, SeqTracker
from rtplay.model.events import State
from rtplay.model.faultspec import parse_fault
from rtplay.protocol.faults import Kind
from rtplay.tui.compare import table_rows
from servers.core.cert import Certificate
from servers.runner import Server, ServerConfig
from tests.conftest import LocalSession, fast_client_options, fast_server_options, running, stalls, wait_until


def retrying_longpoll(delivered: int) -> LongPollClient:
    client = LongPollClient("http://127.0.0.1:1")
    client.clock = lambda: 10.0
    for seq in range(1, delivered + 1):
        client.stats[MAIN].on_message(seq, 0.0, 1.0, now=1.0)
    client.conn.on_connected(1.0)
    client._disconnected("connection refused")
    client._retry_in(10.0, "fixed 10s")
    return client


# --- 1: still-recoverable messages are pending, not lost; the report says whether it settled


def test_1_retrying_client_with_a_servable_cursor_has_pending_not_lost() -> None:
    client = retrying_longpoll(149)
    entry = client.report(400)  # the server still buffers everything (default replay_from)
    assert client.state is State.RETRYING
    assert (entry["lost"], entry["pending"]) == (0, 251)


def test_1_a_cursor_the_server_can_no_longer_serve_is_lost() -> None:
    entry = retrying_longpoll(149).report(400, replay_from=300)
    assert (entry["lost"], entry["pending"]) == (251, 0)


def test_1_an_unsettled_run_says_so_under_the_table() -> None:
    report = {"published": 10, "duration_s": 1.0, "settled": False, "transports": {}, "faults": []}
    assert "not settled" in render_table(report)
    assert "not settled" not in render_table(report | {"settled": True})


async def test_1_headless_report_carries_settled() -> None:
    config = SessionConfig(
        transports=["sse"], server=dataclasses.replace(fast_server_options(), rate=20), client_options=fast_client_options()
    )
    options = HeadlessOptions(duration=0.5, progress=False, settle_s=3.0, out=io.StringIO())
    report = await run_headless(config, options)
    assert report["settled"] is True
    assert report["transports"]["sse"]["pending"] == 0


# --- 2: the comparison view uses the same "lost" as the pane (in flight is pending)


def test_2_compare_view_shows_in_flight_as_pending() -> None:
    client = retrying_longpoll(93)
    report = {"published": 100, "duration_s": 10.0, "transports": {"longpoll": client.report(100)}, "faults": []}
    rows = {label: cells for _, label, cells in table_rows(report)}
    assert rows["lost"] == ["0"]
    assert rows["pending"] == ["7"]


# --- 3: an unreliable channel's losses while down are counted


def test_3_datagrams_published_while_down_are_lost_while_down(cert: Certificate) -> None:
    client = WebTransportClient("127.0.0.1", 4433, cert.der)
    client.clock = lambda: 100.0
    client.on_stream_data(b'{"live": 1}\n', ended=False)
    for seq in range(1, 11):
        client.on_datagram(b'{"seq": %d, "t": 1.0, "data": "x"}' % seq)
    client._disconnected("no pong")  # down while 11..50 are published
    client.on_stream_data(b'{"live": 51}\n', ended=False)
    for seq in (51, 52, 54, 55):  # 53 lost while connected
        client.on_datagram(b'{"seq": %d, "t": 1.0, "data": "x"}' % seq)
    assert client.report(60)["channels"][DATAGRAM]["lost"] == 41  # 56..60 may be in flight
    datagram = client.report(60, final=True)["channels"][DATAGRAM]
    assert (datagram["lost_while_down"], datagram["lost_while_connected"]) == (40, 1 + 5)
    assert datagram["lost"] == 46 and datagram["loss_rate"] == pytest.approx(46 / 60, abs=1e-4)


def test_3_unreliable_tail_waits_for_the_grace() -> None:
    stats = ChannelStats.unreliable()
    stats.on_message(1, 0.0, 1.0, now=0.0)
    stats.on_message(3, 0.0, 1.0, now=0.0)
    from rtplay.model.accounting import View

    assert stats.figures(View(10))["lost"] == 1  # 4..10 may still be in flight
    assert stats.figures(View(10, final=True))["lost"] == 8


# --- 5: a late fill of a written-off gap is out of order, not a duplicate, and not missing


def test_5_late_fill_of_a_written_off_gap(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys.modules[SeqTracker.__module__], "MAX_TRACKED_GAPS", 2)
    t = SeqTracker()
    for seq in (1, 3, 5, 7, 9):  # gaps 2, 4, 6, 8: 2 and 4 are written off
        t.see(seq)
    assert t.missing == 4
    assert t.see(2) is True
    assert (t.delivered, t.duplicates, t.out_of_order, t.missing) == (6, 0, 1, 3)
    assert t.see(2) is False and t.duplicates == 1


# --- 6: downtime never exceeds the duration


def test_6_downtime_stops_at_the_cutoff() -> None:
    c = ConnectionStats()
    c.on_connected(0.0)
    c.on_disconnected(8.0)
    c.cutoff = 10.0  # publishing stopped: the settle that follows is not downtime
    assert c.downtime(now=15.0) == 2.0
    c.on_connected(14.0)
    assert c.downtime(now=20.0) == 2.0


async def test_6_headless_downtime_is_at_most_the_duration() -> None:
    config = SessionConfig(
        transports=["sse"], server=dataclasses.replace(fast_server_options(), rate=20), client_options=fast_client_options()
    )
    options = HeadlessOptions(duration=0.6, progress=False, settle_s=1.0, out=io.StringIO())
    report = await run_headless(config, options, [parse_fault("outage=5s@0.2s")])
    entry = report["transports"]["sse"]
    assert 0 < entry["downtime_s"] <= report["duration_s"]


# --- 7: a crash wipes the replay buffer when it ends, whatever overlaps it


async def test_7_crash_ending_inside_an_outage_still_wipes_the_buffer() -> None:
    server = Server(ServerConfig(rate=0))
    await server.start(publish=False)
    try:
        for _ in range(5):
            server.broadcaster.publish()
        outage = server.add_fault(Kind.OUTAGE, "all", 30)
        crash = server.add_fault(Kind.CRASH, "all", 30)
        server.clear_faults(crash.id)  # the crash ends first; the outage still holds the listeners
        server.clear_faults(outage.id)
        await wait_until(lambda: server.http_running, 5, "listeners back")
        assert server.hub.since(0).reset is not None
        assert server.hub.first_available == 6
    finally:
        await server.stop()


# --- 8: wire bytes never count heartbeats, on any transport


async def test_8_ws_pongs_are_not_wire_bytes(server: Server) -> None:
    client = WebSocketClient(server.http_url, ping_interval=0.05, ping_timeout=1.0)
    async with running(client):
        await wait_until(lambda: client.rtt_ms is not None, 5, "a pong")
        first = client.rtt_ms
        await wait_until(lambda: client.rtt_ms != first, 5, "another pong")
        assert client.stats[MAIN].wire_bytes == 0  # nothing published: only pongs arrived


async def test_8_rtc_pongs_are_not_wire_bytes() -> None:
    from rtplay.clients.rtc import RELIABLE, RTCClient
    from tests.conftest import rtc_server

    async with rtc_server() as (srv, _):
        client = RTCClient(srv.http_url, ping_interval=0.05, ping_timeout=2.0)
        async with running(client):
            await wait_until(lambda: client.rtt_ms is not None, 10, "a pong")
            before = client.stats[RELIABLE].wire_bytes  # the live line only
            first = client.rtt_ms
            await wait_until(lambda: client.rtt_ms != first, 5, "another pong")
            await asyncio.sleep(0)
            assert client.stats[RELIABLE].wire_bytes == before


# --- 4: per-fault records own their events; replayed excludes resets; never negative


async def test_4_a_later_fault_is_not_credited_to_an_earlier_finished_one() -> None:
    async with stalls() as meter, LocalSession(SessionConfig(transports=["ws"], client_options=fast_client_options())) as session:
        await session.set_rate(50)
        await wait_until(lambda: session.clients["ws"].cursor >= 5, 5, "messages")
        delay = await session.faults.add(Kind.DELAY, "ws", 50)
        await asyncio.sleep(0.2)
        await session.faults.clear(delay.id)
        cursor = session.clients["ws"].cursor
        await wait_until(lambda: session.clients["ws"].cursor > cursor + 5, 5, "recovery")
        added = session.clock()
        await session.faults.add(Kind.DROP, "ws")
        await wait_until(lambda: session.clients["ws"].conn.reconnects >= 1, 5, "a reconnect")
        await session.settle(3)
        delay_rec, drop_rec = session.report()["faults"]
    assert delay_rec["time_to_detect_s"] is None and delay_rec["replayed"] == 0
    # The drop is noticed by the closed socket: within 0.5 s, plus what this loop (server and
    # client) lost to stalls meanwhile.
    detect = drop_rec["time_to_detect_s"]
    assert detect is not None
    lost = meter.within(added, added + detect)
    assert detect - lost < 0.5, (detect, lost)


async def test_4_reset_messages_are_not_replayed() -> None:
    async with LocalSession(SessionConfig(transports=["longpoll"], client_options=fast_client_options())) as session:
        await session.set_rate(100)
        await wait_until(lambda: session.clients["longpoll"].cursor >= 20, 5, "messages")
        cursor = session.clients["longpoll"].cursor
        await session.faults.add(Kind.CRASH, "all", 0.4)
        tracker = session.clients["longpoll"].stats[MAIN].tracker
        await wait_until(lambda: tracker.lost_to_reset > 0, 5, "a reset")
        await session.settle(3)
        (rec,) = session.report()["faults"]
    assert rec["lost_to_reset"] == tracker.lost_to_reset > 0
    # Reset seqs never arrive: what was replayed and what was reset are disjoint seqs after the cursor.
    assert rec["replayed"] + rec["lost_to_reset"] <= session.published - cursor
    assert all(v >= 0 for v in rec.values() if isinstance(v, int))


async def test_8_sse_keepalives_are_not_wire_bytes() -> None:
    from rtplay.clients.sse import SSEClient
    from servers.core.context import HttpConfig

    server = Server(ServerConfig(rate=0, http=HttpConfig(sse_heartbeat_s=0.02)))
    await server.start()
    try:
        client = SSEClient(server.http_url)
        async with running(client):
            await wait_until(lambda: client.parser.comments >= 5, 5, "five `: ping` keep-alives")
            headers_only = client.stats[MAIN].wire_bytes
            comments = client.parser.comments
            await wait_until(lambda: client.parser.comments >= comments + 5, 5, "five more")
            assert client.stats[MAIN].wire_bytes == headers_only  # nothing published: only keep-alives
    finally:
        await server.stop()


async def test_4_replayed_counts_a_backlog_that_beat_the_connect_report() -> None:
    # WebTransport's stream may deliver the backlog before the session's 200 is reported:
    # replay is measured from the cursor the reconnect asked for, not the cursor at "connected".
    async with LocalSession(SessionConfig(transports=["wt"], client_options=fast_client_options())) as session:
        client = session.clients["wt"]
        await session.set_rate(100)
        await wait_until(lambda: client.cursor >= 10, 5, "messages")
        await session.faults.add(Kind.DROP, "wt")
        await wait_until(lambda: client.conn.reconnects >= 1, 5, "a reconnect")
        resumed_from = client.resume_cursor
        await wait_until(lambda: client.cursor > session.published - 2, 5, "caught up")
        await session.settle(3)
        (drop,) = session.report()["faults"]
        assert resumed_from is not None and session.published > resumed_from
        assert drop["replayed"] > 0 and drop["lost"] == 0
