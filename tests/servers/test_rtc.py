"""The publishing WebRTC peer and its signaling, over real sockets on 127.0.0.1."""

from __future__ import annotations

import json
import random
import statistics
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import httpx
import pytest
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription

import rtplay.compat.aioice
import servers.rtc.peer as rtc
from rtplay.clients.rtc import DEFAULT_PING_INTERVAL_S, RTCClient
from rtplay.compat.aioice import _get_host_addresses, gather_on
from rtplay.model.events import Event, MessageReceived, State
from rtplay.model.retry import ExponentialBackoff
from rtplay.protocol.faults import Kind
from rtplay.protocol.ice import (
    address_allowed,
    candidate_addresses,
    ensure_on_host,
    host_addresses,
    restrict_candidates,
)
from servers.core.faults import FaultState
from servers.http.common import MAX_REQUEST_BYTES
from servers.rtc.ice import OfferError, parse_offer
from servers.rtc.peer import parse_ping
from servers.runner import Server
from tests.conftest import rtc_server, running, wait_until

pytestmark = pytest.mark.timeout(15)

OFFER = (
    "v=0\r\no=- 4004801105 4004801105 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0\r\n"
    "a=msid-semantic:WMS *\r\nm=application 47114 UDP/DTLS/SCTP webrtc-datachannel\r\n"
    "c=IN IP4 127.0.0.1\r\na=mid:0\r\na=sctp-port:5000\r\na=max-message-size:262144\r\n"
    "a=candidate:16572de626da4e5384a0ce2d0d93678a 1 udp 2130706431 127.0.0.1 47114 typ host\r\n"
    "a=end-of-candidates\r\na=ice-ufrag:BSoY\r\na=ice-pwd:x1njusddmBLVRy696yKldW\r\n"
    "a=fingerprint:sha-256 96:B8:59:98:10:C6:55:DE:67:89:D3:B0:37:0B:97:12:C5:13:81:45:03:A9:EB:06:"
    "AB:4F:27:B0:B6:87:E7:B3\r\na=setup:actpass\r\n"
)
LAN_CANDIDATE = "a=candidate:1 1 udp 2130706431 192.0.2.2 40000 typ host\r\n"


async def chunked(*parts: bytes) -> AsyncIterator[bytes]:
    """A body sent with chunked transfer encoding (no Content-Length)."""
    for part in parts:
        yield part


def edited(old: str, new: str) -> bytes:
    """The sample offer's body with one edit."""
    assert old in OFFER
    return body(OFFER.replace(old, new))


def body(sdp: str = OFFER, kind: str = "offer") -> bytes:
    return json.dumps({"sdp": sdp, "type": kind}).encode()


async def post_offer(http: httpx.AsyncClient, srv: Server, sdp: str) -> httpx.Response:
    return await http.post(f"{srv.http_url}/rtc/offer", json={"sdp": sdp, "type": "offer"})


def fast_client(srv: Server, ping_interval: float = DEFAULT_PING_INTERVAL_S) -> RTCClient:
    """A client that retries within a fraction of a second (tests wait for events, not time)."""
    return RTCClient(srv.http_url, retry=ExponentialBackoff(initial=0.05, maximum=0.3), ping_interval=ping_interval)


async def open_client(srv: Server, client: RTCClient) -> None:
    await wait_until(lambda: client.state is State.OPEN, what="the rtc client to open")


# --- pure pieces ------------------------------------------------------------------------------


def test_parse_offer_accepts_a_loopback_data_channel_offer() -> None:
    offer = parse_offer(body(), "127.0.0.1")
    assert candidate_addresses(offer.sdp) == ["127.0.0.1"]
    assert offer.removed == ()


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        pytest.param(b"not json", "not JSON", id="not-json"),
        pytest.param(b"[1, 2]", "JSON object", id="not-object"),
        pytest.param(body(kind="answer"), 'type must be "offer"', id="wrong-type"),
        pytest.param(json.dumps({"type": "offer"}).encode(), "v=0", id="no-sdp"),
        pytest.param(body("hello"), "v=0", id="not-sdp"),
        pytest.param(body("v=0\r\nm=application x\r\n"), "malformed SDP", id="bad-m-line"),
        pytest.param(edited("16572de626da4e5384a0ce2d0d93678a 1 udp", "1 1"), "malformed SDP", id="short-candidate"),
        pytest.param(edited("application 47114 UDP/DTLS/SCTP webrtc-datachannel", "audio 9 RTP/AVP 0"),
                     "m=application", id="audio"),
        pytest.param(edited("a=ice-pwd:x1njusddmBLVRy696yKldW\r\n", ""), "ICE credentials", id="no-ice-pwd"),
        pytest.param(edited("a=fingerprint", "a=x-fingerprint"), "fingerprint", id="no-fingerprint"),
        pytest.param(edited("a=end-of", LAN_CANDIDATE * 17 + "a=end-of"), "more than 16", id="too-many-candidates"),
    ],
)
def test_parse_offer_rejects_with_a_reason(raw: bytes, message: str) -> None:
    with pytest.raises(OfferError, match=message):
        parse_offer(raw, "127.0.0.1")


def test_off_host_and_mdns_candidates_are_stripped() -> None:
    mdns = "a=candidate:2 1 udp 2130706431 abcd.local 40001 typ host\r\n"
    tcp = "a=candidate:3 1 tcp 2130706431 127.0.0.1 9 typ host tcptype active\r\n"
    sdp = OFFER.replace("a=end-of", LAN_CANDIDATE + mdns + tcp + "a=end-of")
    kept, removed = restrict_candidates(sdp, "127.0.0.1")
    assert candidate_addresses(kept) == ["127.0.0.1"]
    assert removed == ["192.0.2.2", "abcd.local", "127.0.0.1"]
    assert parse_offer(body(sdp), "127.0.0.1").removed == ("192.0.2.2", "abcd.local", "127.0.0.1")


@pytest.mark.parametrize(
    "sdp",
    [
        pytest.param(OFFER.replace("127.0.0.1 47114", "192.0.2.2 47114"), id="lan-only"),
        pytest.param(OFFER.replace("127.0.0.1 47114", "abcd.local 47114"), id="mdns-only"),
        pytest.param(OFFER.replace(OFFER[OFFER.index("a=candidate") : OFFER.index("a=ice-ufrag")], ""), id="none"),
    ],
)
def test_browser_offers_without_a_usable_candidate_are_answered(sdp: str) -> None:
    """What browsers send (mDNS, a LAN address, or nothing): ICE then waits to learn the
    browser's address from its checks, so no end-of-candidates may remain."""
    offer = parse_offer(body(sdp), "127.0.0.1")
    assert candidate_addresses(offer.sdp) == []
    assert "end-of-candidates" not in offer.sdp


def test_address_rules() -> None:
    assert address_allowed("127.0.0.1", "127.0.0.1")
    assert not address_allowed("127.0.0.2", "127.0.0.1")
    assert not address_allowed("host.local", "0.0.0.0")  # never resolve names (mDNS)
    assert address_allowed("192.0.2.2", "0.0.0.0")
    assert host_addresses("127.0.0.1", lambda: ["192.0.2.2"]) == ["127.0.0.1"]
    assert host_addresses("0.0.0.0", lambda: ["192.0.2.2"]) == ["127.0.0.1", "192.0.2.2"]
    with pytest.raises(RuntimeError, match="off the bind address"):
        ensure_on_host(OFFER.replace("a=end-of", LAN_CANDIDATE + "a=end-of"), "127.0.0.1")


def test_the_gather_hook_is_scoped_to_its_block() -> None:
    with gather_on("127.0.0.1"):
        assert _get_host_addresses(True, True) == ["127.0.0.1"]
    original = rtplay.compat.aioice._original_get_host_addresses
    assert original is not None
    assert _get_host_addresses(True, True) == original(True, True)  # aioice's own outside it


def test_parse_ping() -> None:
    assert parse_ping('{"ping": 12.5}') == 12.5
    for bad in ('{"ping": "x"}', '{"pong": 1}', "[]", b'{"ping": 1}', '{"ping": true}', " " * 5000):
        with pytest.raises(ValueError):
            parse_ping(bad)


# --- over real sockets ------------------------------------------------------------------------


async def test_delivers_on_both_channels_with_every_candidate_on_loopback() -> None:
    async with rtc_server() as (srv, manager), running(fast_client(srv)) as client:
        await open_client(srv, client)
        srv.set_rate(200)
        await wait_until(lambda: srv.hub.last_seq >= 300, what="300 published")
        srv.set_rate(0)
        for channel in ("reliable", "unreliable"):
            tracker = client.stats[channel].tracker
            await wait_until(lambda t=tracker: t.highest == srv.hub.last_seq, what=f"{channel} caught up")
        reliable = client.stats["reliable"].tracker
        published = srv.hub.last_seq
        counts = (reliable.delivered, reliable.missing, reliable.duplicates, reliable.out_of_order)
        assert counts == (published, 0, 0, 0)
        assert client.stats["unreliable"].tracker.delivered > 0
        # Both SDPs, as sent: every candidate on 127.0.0.1; and the ICE sockets bound there.
        assert candidate_addresses(client.last_offer) == ["127.0.0.1"]
        assert candidate_addresses(client.last_answer) == ["127.0.0.1"]
        (peer,) = manager.peers
        assert peer.pc.sctp is not None
        ice = peer.pc.sctp.transport.transport
        assert {c.ip for c in ice.iceGatherer.getLocalCandidates()} == {"127.0.0.1"}
        assert {c.ip for c in ice.getRemoteCandidates()} == {"127.0.0.1"}
        assert client.setup_ms is not None and client.setup_ms > 0
        assert srv.ctx.registry.count("rtc") == 1


async def test_channel_survives_an_http_restart() -> None:
    async with rtc_server() as (srv, manager), running(fast_client(srv)) as client:
        await open_client(srv, client)
        srv.set_rate(100)
        await srv.stop_http()
        at_stop = client.cursor
        # Signaling is down, yet the established channel keeps delivering.
        await wait_until(lambda: client.cursor >= at_stop + 30, what="seqs while HTTP is down")
        async with httpx.AsyncClient(trust_env=False) as http:
            with pytest.raises(httpx.ConnectError):
                await http.post(f"{srv.http_url}/rtc/offer", content=body())
        await srv.start_http()
        srv.set_rate(0)
        await wait_until(lambda: client.cursor == srv.hub.last_seq, what="reliable caught up")
        assert client.conn.connects == 1 and client.stats["reliable"].tracker.missing == 0
        async with running(fast_client(srv)) as second:  # the restarted listener signals again
            await open_client(srv, second)


async def test_bad_offers_get_400_and_the_server_goes_on() -> None:
    async with rtc_server() as (srv, manager):
        url = f"{srv.http_url}/rtc/offer"
        async with httpx.AsyncClient(trust_env=False) as http:
            cases = [
                await http.post(url, content=b"{nope"),
                await http.post(url, content=body(kind="answer")),
                await http.post(url, content=body("v=0\r\nm=application x\r\n")),
                await http.post(url, content=b"x" * (MAX_REQUEST_BYTES + 1)),
                await http.post(url, content=chunked(b"x" * MAX_REQUEST_BYTES, b"x")),
                await http.post(url + "?since=abc", content=body()),
            ]
            for response in cases:
                assert response.status_code == 400, response.text
                assert response.json()["error"]
            assert manager.count == 0
        async with running(fast_client(srv)) as client:
            await open_client(srv, client)
            srv.broadcaster.publish()
            await wait_until(lambda: client.cursor == 1, what="delivery after bad offers")


async def test_error_fault_answers_signaling() -> None:
    async with rtc_server() as (srv, manager), httpx.AsyncClient(trust_env=False) as http:
        fault = srv.faults.add(Kind.ERROR, "rtc", 503, now=srv.ctx.clock())
        response = await http.post(f"{srv.http_url}/rtc/offer", content=body())
        assert response.status_code == 503 and response.headers["Retry-After"] == "2"
        assert "injected fault" in response.json()["error"]
        srv.faults.clear(fault.id)
        assert (await http.post(f"{srv.http_url}/rtc/offer", content=b"{}")).status_code == 400


async def test_peer_count_is_bounded() -> None:
    async with rtc_server(max_peers=1) as (srv, manager), running(fast_client(srv)) as first:
        await open_client(srv, first)
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        try:
            pc.createDataChannel("reliable")
            with gather_on("127.0.0.1"):
                await pc.setLocalDescription(await pc.createOffer())
            async with httpx.AsyncClient(trust_env=False) as http:
                response = await post_offer(http, srv, pc.localDescription.sdp)
        finally:
            await pc.close()
        assert response.status_code == 503
        assert "too many WebRTC peers (1)" in response.json()["error"]
        assert manager.count == 1


async def test_peers_are_freed_when_clients_go_away(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(rtc, "SETUP_TIMEOUT_S", 0.5)
    async with rtc_server() as (srv, manager):
        async with running(fast_client(srv)) as client:
            await open_client(srv, client)
            assert manager.count == 1
        # The client closed its peer connection: the server sees its channels close.
        await wait_until(lambda: manager.count == 0, what="the peer freed after the client left")
        # A client that signals and vanishes before its channels open is freed by the timeout.
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        pc.createDataChannel("reliable")
        with gather_on("127.0.0.1"):
            await pc.setLocalDescription(await pc.createOffer())
        await pc.close()
        async with httpx.AsyncClient(trust_env=False) as http:
            response = await post_offer(http, srv, pc.localDescription.sdp)
        assert response.status_code == 200
        assert manager.count == 1
        await wait_until(lambda: manager.count == 0, what="the abandoned peer freed")
        assert srv.ctx.registry.count("rtc") == 0


@pytest.mark.timeout(40)
async def test_loss_hits_unreliable_while_reliable_loses_nothing() -> None:
    faults = FaultState(rng=random.Random(7))
    async with rtc_server(faults=faults) as (srv, manager), running(fast_client(srv)) as client:
        await open_client(srv, client)
        faults.add(Kind.LOSS, "rtc", 20, now=srv.ctx.clock())
        srv.set_rate(250)
        await wait_until(lambda: srv.hub.last_seq >= 300, what="300 published")
        srv.set_rate(0)
        faults.clear()
        # aiortc sends one SCTP packet per message: 20 % loss both ways takes a while to repair,
        # and each retransmission timeout doubles SCTP's RTO (RFC 9260 §6.3.3), so the repair
        # time has a long tail that a busy machine stretches: 300 messages (not 500) keep it short.
        await wait_until(lambda: client.cursor == srv.hub.last_seq, 30, what="reliable recovered everything")
        srv.broadcaster.publish()  # a last, loss-free envelope closes unreliable's final gap
        unreliable_tracker = client.stats["unreliable"].tracker
        await wait_until(lambda: unreliable_tracker.highest == srv.hub.last_seq, what="unreliable's last")
        reliable, unreliable = client.stats["reliable"], client.stats["unreliable"]
        published = srv.hub.last_seq
        assert reliable.lost(published) == 0 and reliable.tracker.duplicates == 0
        assert reliable.tracker.delivered == published
        loss = unreliable.lost(published) / published
        assert 0.12 <= loss <= 0.30, f"unreliable lost {loss:.1%}"
        (peer,) = manager.peers
        assert peer.path is not None and peer.path.outbound.dropped > 0
        assert client.conn.connects == 1


async def test_delay_fault_holds_each_envelope_to_its_own_time() -> None:
    """Every envelope arrives 200 ms after its own send time: shifted, not spaced 200 ms
    apart. The path's own latency is measured first, in the same run (a loaded machine adds
    to both alike)."""
    arrivals: list[MessageReceived] = []

    def record(event: Event) -> None:
        if isinstance(event, MessageReceived) and event.new:
            arrivals.append(event)

    async with rtc_server() as (srv, _):
        client = RTCClient(srv.http_url, record, emit_messages=True,
                           retry=ExponentialBackoff(initial=0.05, maximum=0.3))
        async with running(client):
            await open_client(srv, client)
            srv.set_rate(100)
            await wait_until(lambda: client.cursor >= 30, what="30 envelopes without the fault")
            fault = srv.faults.add(Kind.DELAY, "rtc", 200, now=srv.ctx.clock())
            first_delayed = srv.hub.last_seq + 1
            await wait_until(lambda: client.cursor >= first_delayed + 30, what="30 delayed envelopes")
            srv.set_rate(0)
            # Clearing the fault releases what is still held, at once: only what arrived under it counts.
            under_fault = list(arrivals)
            srv.faults.clear(fault.id)
    for channel in ("reliable", "unreliable"):
        before = [e.latency_ms for e in under_fault if e.channel == channel and e.seq < first_delayed - 1]
        held = [e.latency_ms for e in under_fault if e.channel == channel and e.seq >= first_delayed]
        assert len(before) >= 10 and len(held) >= 10, (channel, len(before), len(held))
        # Never released early, whatever the load: the hold counts from the envelope's send time.
        assert min(held) >= 195, (channel, min(held))
        # Held 200 ms each, not queued behind one another (a serial hold would put the median
        # near 15 x 200 ms): the median is the hold plus the path's own median, within 50 ms.
        assert statistics.median(held) <= 200 + statistics.median(before) + 50, (channel, held, before)


async def test_a_peer_too_far_behind_is_closed_with_a_reason(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(rtc, "HIGH_WATER_BYTES", 4_000)
    monkeypatch.setattr(rtc, "LOW_WATER_BYTES", 1_000)
    monkeypatch.setattr(rtc, "DRAIN_TIMEOUT_S", 0.5)
    async with rtc_server() as (srv, manager), running(fast_client(srv, ping_interval=30)) as client:
        await open_client(srv, client)
        (peer,) = manager.peers
        srv.faults.add(Kind.LOSS, "rtc", 100, now=srv.ctx.clock())  # nothing gets through: SCTP backs up
        srv.set_rate(500)
        await wait_until(lambda: peer.reason != "", what="the slow peer to be closed")
        assert peer.reason.startswith("consumer too slow") and "buffered on reliable" in peer.reason
        await wait_until(lambda: peer not in manager.peers, what="the slow peer freed")


@asynccontextmanager
async def raw_peer(srv: Server, edit: Callable[[str], str] = lambda sdp: sdp) -> AsyncIterator[tuple[list[str], str]]:
    """A bare aiortc peer offering both channels (its offer passed through ``edit``):
    yields the ``reliable`` messages as they arrive and the server's answer."""
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    try:
        reliable = pc.createDataChannel("reliable")
        pc.createDataChannel("unreliable", ordered=False, maxRetransmits=0)
        got: list[str] = []
        reliable.on("message", got.append)
        with gather_on("127.0.0.1"):
            await pc.setLocalDescription(await pc.createOffer())
        async with httpx.AsyncClient(trust_env=False) as http:
            response = await post_offer(http, srv, edit(pc.localDescription.sdp))
        assert response.status_code == 200, response.text
        answer = response.json()["sdp"]
        with gather_on("127.0.0.1"):
            await pc.setRemoteDescription(RTCSessionDescription(answer, "answer"))
        yield got, answer
    finally:
        await pc.close()


def as_browser(sdp: str) -> str:
    """The offer as a desktop browser sends it: its host candidate as an mDNS name."""
    (ours,) = candidate_addresses(sdp)
    return sdp.replace(f" {ours} ", " 0a1b2c3d-browser.local ")


async def test_a_browser_like_offer_connects_by_learning_the_peer_reflexive_address() -> None:
    """An offer whose only candidate is an mDNS name, as browsers send: the server answers
    with its loopback candidate and learns the peer's address from the peer's own checks."""
    async with rtc_server() as (srv, manager):
        srv.set_rate(50)
        async with raw_peer(srv, as_browser) as (got, answer):
            assert candidate_addresses(answer) == ["127.0.0.1"]
            await wait_until(lambda: len(got) >= 3, what="envelopes over a peer-reflexive pair")
            (peer,) = manager.peers
            assert peer.pc.sctp is not None
            remote = peer.pc.sctp.transport.transport.getRemoteCandidates()
            # The mDNS name was never resolved nor used: the one remote candidate is learned.
            assert [(c.type, c.ip) for c in remote] == [("prflx", "127.0.0.1")]


async def test_reliable_carries_one_envelope_per_message_while_catching_up() -> None:
    """A resume backlog is sent one envelope per message, as a browser's onmessage expects."""
    async with rtc_server() as (srv, manager):
        for _ in range(40):
            srv.ctx.broadcaster.publish()
        async with raw_peer(srv) as (got, _):
            await wait_until(lambda: len(got) >= 41, what="the greeting and 40 messages")
            payloads = [json.loads(message) for message in got]  # one JSON value per message
            assert payloads[0] == {"live": 41}
            assert [p["seq"] for p in payloads[1:]] == list(range(1, 41))
