"""A client and a server QUIC connection joined in memory (no sockets, ``now`` passed in),
with HTTP/3 and a WebTransport session on top when a test needs them."""

from __future__ import annotations

import ssl
from collections.abc import Callable
from dataclasses import dataclass

from aioquic.h3.connection import H3_ALPN, H3Connection
from aioquic.h3.events import H3Event, HeadersReceived
from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.connection import QuicConnection

from servers.core.cert import Certificate

CLIENT_ADDR = ("127.0.0.1", 40000)
SERVER_ADDR = ("127.0.0.1", 4433)


@dataclass
class Pair:
    client: QuicConnection
    server: QuicConnection
    now: float = 1.0

    def send(self, sender: QuicConnection, receiver: QuicConnection, addr: tuple[str, int]) -> int:
        """Deliver every datagram ``sender`` has to send now; how many there were."""
        count = 0
        for data, _ in sender.datagrams_to_send(now=self.now):
            receiver.receive_datagram(data, addr, now=self.now)
            count += 1
        return count

    def to_server(self) -> int:
        return self.send(self.client, self.server, CLIENT_ADDR)

    def to_client(self) -> int:
        return self.send(self.server, self.client, SERVER_ADDR)

    def settle(self) -> None:
        """Exchange packets both ways until neither side has anything to send (timers fire)."""
        for _ in range(50):
            self.now += 0.03  # past the ACK delay: owed ACKs go out
            if not (self.to_server() + self.to_client()):
                return
        raise AssertionError("the connections never went quiet")


def joined(cert: Certificate, server_window: int = 1048576) -> Pair:
    """A client and server connection after their handshake; ``server_window``: the
    flow-control credit the server grants per stream at first (aioquic's default)."""
    client_config = QuicConfiguration(is_client=True, alpn_protocols=H3_ALPN, max_datagram_frame_size=65536)
    client_config.verify_mode = ssl.CERT_NONE
    server_config = QuicConfiguration(is_client=False, alpn_protocols=H3_ALPN, max_datagram_frame_size=65536)
    server_config.certificate = cert.certificate
    server_config.private_key = cert.private_key
    server_config.max_stream_data = server_window
    client = QuicConnection(configuration=client_config)
    server = QuicConnection(
        configuration=server_config, original_destination_connection_id=client.original_destination_connection_id
    )
    pair = Pair(client, server)
    client.connect(SERVER_ADDR, now=pair.now)
    pair.settle()
    return pair


def deliver(send: Callable[[], int], receiver: QuicConnection, h3: H3Connection) -> list[H3Event]:
    """Send what one side has, and what the other side's HTTP/3 makes of it."""
    send()
    events: list[H3Event] = []
    while (quic_event := receiver.next_event()) is not None:
        events.extend(h3.handle_event(quic_event))
    return events


def h3_session(pair: Pair, path: bytes = b"/wt") -> tuple[H3Connection, H3Connection, int]:
    """A WebTransport session from the client to the server (CONNECT answered 200)."""
    client = H3Connection(pair.client, enable_webtransport=True)
    server = H3Connection(pair.server, enable_webtransport=True)
    session_id = pair.client.get_next_available_stream_id()
    client.send_headers(
        session_id,
        [(b":method", b"CONNECT"), (b":protocol", b"webtransport"), (b":scheme", b"https"),
         (b":authority", b"127.0.0.1"), (b":path", path)],
    )
    for event in deliver(pair.to_server, pair.server, server):
        if isinstance(event, HeadersReceived):
            server.send_headers(event.stream_id, [(b":status", b"200")])
    deliver(pair.to_client, pair.client, client)
    return client, server, session_id
