"""A counting UDP relay on loopback: what one client and its server put on the wire."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

HOST = "127.0.0.1"


@dataclass
class Direction:
    """Datagrams and their payload bytes in one direction."""

    packets: int = 0
    octets: int = 0

    def count(self, data: bytes) -> None:
        self.packets += 1
        self.octets += len(data)


class _Upstream(asyncio.DatagramProtocol):
    """The relay's socket towards the server: what comes back goes to the client."""

    def __init__(self, relay: UdpRelay) -> None:
        self.relay = relay

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.relay.from_server(data)


class UdpRelay(asyncio.DatagramProtocol):
    """Forwards one client's datagrams to ``server`` and the answers back, counting both ways."""

    def __init__(self) -> None:
        self.up = Direction()
        """Client to server."""
        self.down = Direction()
        """Server to client."""
        self.client: Any = None
        self.listening: asyncio.DatagramTransport | None = None
        self.upstream: asyncio.DatagramTransport | None = None

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.client = addr
        self.up.count(data)
        if self.upstream is not None:
            self.upstream.sendto(data)

    def from_server(self, data: bytes) -> None:
        self.down.count(data)
        if self.listening is not None and self.client is not None:
            self.listening.sendto(data, self.client)

    def __repr__(self) -> str:
        return f"UdpRelay(up={self.up}, down={self.down})"

    def reset(self) -> None:
        """Count from zero again."""
        self.up, self.down = Direction(), Direction()


@contextlib.asynccontextmanager
async def udp_relay(server_port: int) -> AsyncIterator[tuple[UdpRelay, int]]:
    """A relay to ``127.0.0.1:server_port`` and the port clients should use; closed on exit."""
    loop = asyncio.get_running_loop()
    relay = UdpRelay()
    listening, _ = await loop.create_datagram_endpoint(lambda: relay, local_addr=(HOST, 0))
    try:
        upstream, _ = await loop.create_datagram_endpoint(lambda: _Upstream(relay), remote_addr=(HOST, server_port))
    except BaseException:
        listening.close()
        raise
    relay.listening, relay.upstream = listening, upstream
    try:
        yield relay, listening.get_extra_info("sockname")[1]
    finally:
        upstream.close()
        listening.close()
