"""The WebTransport client's ACK decimation: the pure policy, then on a real connection."""

from __future__ import annotations

import pytest

from rtplay.clients.wt_ack import AckDecimation
from rtplay.clients.wt_conn import WebTransportProtocol, _NetworkGate
from rtplay.model.events import State
from servers.core.cert import Certificate
from servers.quic.server import QuicListener
from servers.runner import Server
from tests.conftest import wait_until
from tests.clients.test_wt import assert_stream_complete, running, settle


def test_one_ack_per_ten_datagrams_while_one_is_owed() -> None:
    acks = AckDecimation(every=10)
    decisions = [acks.on_datagram(owed_before=i > 0, new_gap=False, handshake_done=True) for i in range(25)]
    assert [i for i, now in enumerate(decisions) if now] == [9, 19]


def test_the_count_starts_again_once_the_timer_sent_the_ack() -> None:
    acks = AckDecimation(every=3)
    assert not acks.on_datagram(owed_before=False, new_gap=False, handshake_done=True)
    assert not acks.on_datagram(owed_before=True, new_gap=False, handshake_done=True)
    # the ACK timer fired in between: nothing is owed before the next datagram
    assert not acks.on_datagram(owed_before=False, new_gap=False, handshake_done=True)
    assert not acks.on_datagram(owed_before=True, new_gap=False, handshake_done=True)
    assert acks.on_datagram(owed_before=True, new_gap=False, handshake_done=True)


def test_a_gap_and_the_handshake_are_answered_at_once() -> None:
    acks = AckDecimation(every=10)
    assert acks.on_datagram(owed_before=False, new_gap=False, handshake_done=False)
    assert not acks.on_datagram(owed_before=False, new_gap=False, handshake_done=True)
    assert acks.on_datagram(owed_before=True, new_gap=True, handshake_done=True)  # RFC 9000 §13.2.1
    assert acks.unacked == 0
    with pytest.raises(ValueError):
        AckDecimation(every=0)


async def test_the_client_acknowledges_many_packets_with_one(
    server: Server, listener: QuicListener, cert: Certificate, monkeypatch: pytest.MonkeyPatch
) -> None:
    """aioquic alone answers nearly every packet at 500 msg/s; the stream still loses nothing."""
    counts = {"sent": 0, "received": 0}
    send, receive = _NetworkGate.sendto, WebTransportProtocol.datagram_received

    def counting_send(self: _NetworkGate, data: bytes, addr: object = None) -> None:
        counts["sent"] += 1
        send(self, data, addr)

    def counting_receive(self: WebTransportProtocol, data: bytes, addr: object) -> None:
        counts["received"] += 1
        receive(self, data, addr)

    monkeypatch.setattr(_NetworkGate, "sendto", counting_send)
    monkeypatch.setattr(WebTransportProtocol, "datagram_received", counting_receive)
    async with running(listener.port, cert.der) as client:
        await wait_until(lambda: client.state is State.OPEN, 5, "a session")
        counts.update(sent=0, received=0)
        server.set_rate(500)
        await wait_until(lambda: server.hub.last_seq >= 500, 5, "a second of messages")
        published = await settle(server, client)
        assert_stream_complete(client, published)
    assert counts["received"] >= 100
    assert counts["sent"] <= counts["received"] / 4, counts
