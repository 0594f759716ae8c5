"""websockets' internals rtplay reads: checked at start-up, and an abort drops the TCP
connection without a closing handshake (the peer sees 1006, not a clean close)."""

from __future__ import annotations

import asyncio

import pytest
import websockets.version
from websockets.asyncio.client import connect
from websockets.asyncio.connection import Connection
from websockets.asyncio.server import ServerConnection, serve

from rtplay.compat import IncompatibleLibrary
from rtplay.compat import websockets as compat


def test_the_installed_websockets_passes_the_start_up_check() -> None:
    compat.check()


def test_a_websockets_without_the_transport_attribute_is_refused_by_name(monkeypatch: pytest.MonkeyPatch) -> None:
    def connection_made(self: Connection, transport: asyncio.BaseTransport) -> None:
        vars(self)["wire"] = transport  # kept under another name: abort() could not find it

    monkeypatch.setattr(Connection, "connection_made", connection_made)
    with pytest.raises(IncompatibleLibrary, match=f"websockets {websockets.version.version} lacks Connection.transport"):
        compat.check()


async def close_code_seen_by_server(end: str) -> int | None:
    """Connect to a server on 127.0.0.1, end the client side by ``end``; the close code the
    server's side of the connection records."""
    seen: asyncio.Future[int | None] = asyncio.get_running_loop().create_future()

    async def handler(ws: ServerConnection) -> None:
        await ws.wait_closed()
        seen.set_result(ws.close_code)

    async with serve(handler, "127.0.0.1", 0, ping_interval=None) as server:
        port = server.sockets[0].getsockname()[1]
        async with connect(f"ws://127.0.0.1:{port}", ping_interval=None, close_timeout=1) as client:
            if end == "abort":
                compat.abort(client)
            else:
                await client.close()
            return await asyncio.wait_for(seen, 10)


async def test_abort_ends_the_connection_without_a_closing_handshake() -> None:
    assert await close_code_seen_by_server("close") == 1000  # the baseline: a clean close
    assert await close_code_seen_by_server("abort") == 1006  # RFC 6455 §7.1.5: closed abnormally
