"""An outage or a crash takes every listener down at once, over real sockets on 127.0.0.1."""

from __future__ import annotations

import asyncio

import pytest

import servers.runner
from rtplay.clients.wt_conn import client_configuration, open_connection
from rtplay.protocol.faults import Kind
from servers.runner import Server, ServerConfig
from tests.conftest import wait_until

HOST = "127.0.0.1"

#: Long enough that a WebTransport session still open when it ends was kept up by HTTP.
HTTP_WIND_DOWN_S = 30.0


@pytest.mark.parametrize("kind", [Kind.CRASH, Kind.OUTAGE])
async def test_webtransport_goes_down_at_once_while_http_still_winds_down(
    kind: Kind, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The HTTP listener waits for the handlers in flight when it stops (a request whose body
    is still coming holds it up to its shutdown timeout). WebTransport's sessions waited for
    that too before QUIC went down, so a loaded server's crash reached wt clients a second or
    more after every other transport, and they came back that much earlier."""
    monkeypatch.setattr(servers.runner, "HTTP_SHUTDOWN_TIMEOUT_S", HTTP_WIND_DOWN_S)
    server = Server(ServerConfig(rate=0))
    await server.start()
    writer: asyncio.StreamWriter | None = None
    try:
        configuration = client_configuration(server.cert.der, HOST, idle_timeout=60.0)
        async with open_connection(HOST, server.quic.port, configuration) as conn:
            assert await conn.open_session(f"{HOST}:{server.quic.port}", "/wt") == 200
            # A request in flight: its head came, its body never will.
            _, writer = await asyncio.open_connection(HOST, server.http_port)
            writer.write(
                f"POST /rtc/offer HTTP/1.1\r\nHost: {HOST}:{server.http_port}\r\n"
                "Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{".encode()
            )
            await writer.drain()
            await wait_until(lambda: server.connections.busy() == 1 and server.ctx.registry.count("wt") == 1, 5,
                             "the request in flight and the session")
            server.add_fault(kind, value=60.0)
            async with asyncio.timeout(5):  # not HTTP_WIND_DOWN_S
                await conn.ended.wait()
    finally:
        if writer is not None:
            writer.close()
        server.clear_faults()
        await server.stop()


async def test_an_outage_does_not_wait_on_a_stream_that_waits_for_the_next_message(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An idle SSE stream's handler waits for the next publish (at rate 0, for ever), so it
    does not end when its connection is aborted; the outage waits only while aborted handlers
    are still ending. It waited the whole wind-down for it: every stop of a server with an
    idle stream took 5 s."""
    monkeypatch.setattr(servers.runner, "DROPPED_HANDLERS_S", HTTP_WIND_DOWN_S)
    server = Server(ServerConfig(rate=0))
    await server.start()
    writer: asyncio.StreamWriter | None = None
    try:
        reader, writer = await asyncio.open_connection(HOST, server.http_port)
        writer.write(f"GET /sse HTTP/1.1\r\nHost: {HOST}:{server.http_port}\r\n\r\n".encode())
        await writer.drain()
        await wait_until(lambda: server.ctx.registry.count("sse") == 1, 5, "the stream open")
        async with asyncio.timeout(5):  # not HTTP_WIND_DOWN_S
            await server.stop_listeners()
        assert not server.http_running
        assert await reader.read() is not None  # the peer heard the end
    finally:
        if writer is not None:
            writer.close()
        await server.stop()
