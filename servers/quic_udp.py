"""The HTTP/3 listener's UDP socket, with the datagram faults applied.

The ``loss``, ``reorder`` and ``duplicate`` faults act on every UDP datagram through the
listener's socket, both ways, so that QUIC's own loss recovery has to repair the stream
(see :mod:`servers.quic`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, TypeVar, cast

from aioquic.asyncio.protocol import QuicConnectionProtocol
from aioquic.asyncio.server import QuicServer

from rtplay.protocol.compat.aioquic import server_protocols
from rtplay.protocol.udpfaults import DatagramShaper


Fate = Callable[[], tuple[bool, bool, bool]]
Address = Any  # whatever the socket gives: (host, port) or (host, port, flow, scope)
Datagram = tuple[bytes, Address]
P = TypeVar("P", bound=QuicConnectionProtocol)


class _ImpairedPath:
    """Moves datagrams to ``deliver`` through a :class:`DatagramShaper`; flushes late holds."""

    def __init__(self, fate: Fate, deliver: Callable[[bytes, Address], None]) -> None:
        self._fate = fate
        self._deliver = deliver
        self._shaper: DatagramShaper[Datagram] = DatagramShaper()
        self._timer: asyncio.TimerHandle | None = None
        self._loop = asyncio.get_running_loop()

    def __call__(self, data: bytes, addr: Address) -> None:
        for datagram in self._shaper.push((data, addr), self._fate(), self._loop.time()):
            self._deliver(*datagram)
        deadline = self._shaper.deadline
        if deadline is not None and self._timer is None:
            self._timer = self._loop.call_at(deadline, self._flush)

    def _flush(self) -> None:
        self._timer = None
        for datagram in self._shaper.due(self._loop.time()):
            self._deliver(*datagram)

    def cancel(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None


class _ImpairedTransport(asyncio.DatagramTransport):
    """The listener's socket as its QUIC connections see it: sends go through the faults."""

    def __init__(self, inner: asyncio.DatagramTransport, fate: Fate) -> None:
        super().__init__()
        self._inner = inner
        self._path = _ImpairedPath(fate, self._send)

    def _send(self, data: bytes, addr: Address) -> None:
        if not self._inner.is_closing():  # a stopped listener sends nothing, like a dead one
            self._inner.sendto(data, addr)

    def sendto(self, data: Any, addr: Address = None) -> None:
        self._path(bytes(data), addr)

    def close(self) -> None:
        self._path.cancel()
        self._inner.close()

    def abort(self) -> None:
        self.close()

    def is_closing(self) -> bool:
        return self._inner.is_closing()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self._inner.get_extra_info(name, default)


class ImpairedQuicServer(QuicServer):
    """aioquic's QUIC server with the fault path wrapped around its receive and send."""

    def __init__(self, *, fate: Fate, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._fate = fate
        self._inbound = _ImpairedPath(fate, super().datagram_received)
        self.socket_closed = asyncio.Event()
        """Set once the UDP socket is really closed (asyncio closes it a loop step later)."""

    def connection_lost(self, exc: Exception | None) -> None:
        self.socket_closed.set()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        inner = cast(asyncio.DatagramTransport, transport)
        super().connection_made(_ImpairedTransport(inner, self._fate))

    def datagram_received(self, data: bytes | str, addr: Address) -> None:
        self._inbound(bytes(data) if isinstance(data, bytes) else data.encode(), addr)

    def connections(self, kind: type[P]) -> list[P]:
        """Live QUIC connections of type ``kind``."""
        return [p for p in server_protocols(self) if isinstance(p, kind)]

    def close(self) -> None:
        self._inbound.cancel()
        super().close()

