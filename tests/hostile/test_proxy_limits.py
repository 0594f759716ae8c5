"""A slow reader, a client that never finishes its headers, an oversized frame and a dead
upstream cannot make the proxy buffer without bound or hang."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web

from rtplay.proxy.pipe import MAX_PIPE_BYTES
from rtplay.proxy.proxy import FaultProxy
from rtplay.proxy.wsrelay import MAX_WS_MESSAGE
from tests.proxy.upstreams import ws_upstream

CHUNK = b": " + b"x" * (64 << 10) + b"\n\n"


class Firehose:
    """An upstream that writes an event stream as fast as it is taken, counting what it wrote."""

    def __init__(self) -> None:
        self.written = 0

    async def handle(self, request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        try:
            while True:
                await response.write(CHUNK)
                self.written += len(CHUNK)
        except ConnectionResetError:
            pass
        return response


@pytest.fixture
async def firehose() -> AsyncIterator[tuple[FaultProxy, Firehose]]:
    hose = Firehose()
    app = web.Application()
    app.router.add_get("/events", hose.handle)
    runner = web.AppRunner(app, shutdown_timeout=0.2)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    proxy = FaultProxy("hose", f"127.0.0.1:{runner.addresses[0][1]}", header_timeout_s=0.5)
    await proxy.start()
    try:
        yield proxy, hose
    finally:
        await proxy.stop()
        await runner.cleanup()


async def settled(read: callable[[], int], quiet: float = 0.3, timeout: float = 10.0) -> int:  # type: ignore[valid-type]
    """The value of ``read()`` once it stops growing for ``quiet`` seconds."""
    deadline = time.monotonic() + timeout
    last, since = read(), time.monotonic()
    while time.monotonic() < deadline:
        await asyncio.sleep(0.05)
        now = read()
        if now != last:
            last, since = now, time.monotonic()
        elif time.monotonic() - since >= quiet:
            return now
    raise AssertionError(f"still growing after {timeout}s: {last} bytes")


async def test_a_reader_that_never_reads_stops_the_upstream_instead_of_filling_memory(
    firehose: tuple[FaultProxy, Firehose],
) -> None:
    proxy, hose = firehose
    proxy.add_fault("delay=1ms")  # a fault on: units queue in the proxy's pipe, which is bounded
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", proxy.port))
    try:
        sock.sendall(b"GET /events HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n")
        written = await settled(lambda: hose.written)
        # What the upstream got rid of sits in socket buffers (a few MB on loopback at most)
        # and in the proxy's pipe (MAX_PIPE_BYTES); without a bound it would never stop.
        assert written < MAX_PIPE_BYTES + (24 << 20), written
    finally:
        sock.close()


async def test_a_client_that_never_finishes_its_headers_is_cut(firehose: tuple[FaultProxy, Firehose]) -> None:
    proxy, _ = firehose
    reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
    try:
        writer.write(b"GET /events HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
        await writer.drain()
        assert await asyncio.wait_for(reader.read(), 5) == b""  # closed at the header deadline
    finally:
        writer.close()


async def test_an_endless_header_line_is_refused(firehose: tuple[FaultProxy, Firehose]) -> None:
    proxy, hose = firehose
    reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
    try:
        writer.write(b"GET /events HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: " + b"a" * 100_000 + b"\r\n\r\n")
        answer = await asyncio.wait_for(reader.read(), 5)
        assert answer.split(b" ", 2)[1] == b"400" and hose.written == 0
    finally:
        writer.close()


async def test_an_oversized_websocket_message_closes_with_1009_and_never_reaches_the_upstream() -> None:
    async with ws_upstream() as url:
        proxy = FaultProxy("ws", url)
        await proxy.start()
        try:
            async with aiohttp.ClientSession() as http:
                async with http.ws_connect(proxy.url + "/echo", max_msg_size=0) as ws:
                    await ws.send_bytes(b"x" * (MAX_WS_MESSAGE + 1))
                    msg = await ws.receive()
                    assert msg.type == aiohttp.WSMsgType.CLOSE and msg.data == 1009
            conn = proxy.wire.connections()[0]
            assert conn.messages["upstream"] == 0
        finally:
            await proxy.stop()


async def test_a_dead_upstream_answers_502_with_the_reason_for_requests_and_websockets() -> None:
    proxy = FaultProxy("down", "127.0.0.1:1")
    await proxy.start()
    try:
        async with aiohttp.ClientSession() as http:
            async with http.get(proxy.url + "/events", headers={"Accept": "text/event-stream"}) as response:
                assert response.status == 502 and "unreachable" in await response.text()
            with pytest.raises(aiohttp.WSServerHandshakeError) as caught:
                await http.ws_connect(proxy.url + "/ws")
            assert caught.value.status == 502
        routes = {r["kind"]: r for r in proxy.wire_json()["routes"]}
        assert routes["sse"]["refused"] == 1 and routes["ws"]["refused"] == 1
        assert "unreachable" in routes["ws"]["last_error"]
    finally:
        await proxy.stop()


async def test_a_websocket_reader_that_never_reads_stops_the_upstream() -> None:
    from websockets.asyncio.server import ServerConnection, serve
    from websockets.exceptions import ConnectionClosed

    sent = 0
    block = "x" * (64 << 10)

    async def flood(ws: ServerConnection) -> None:
        nonlocal sent
        try:
            while True:
                await ws.send(block)
                sent += len(block)
        except ConnectionClosed:
            pass

    async with serve(flood, "127.0.0.1", 0, max_queue=4) as upstream:
        port = next(iter(upstream.sockets)).getsockname()[1]
        async with FaultProxy("ws", f"127.0.0.1:{port}") as proxy:
            proxy.add_fault("delay=1ms")  # a fault on: messages queue in the bounded pipe
            sock = socket.socket()
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            sock.connect(("127.0.0.1", proxy.port))
            try:
                sock.sendall(
                    b"GET /flood HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
                )
                written = await settled(lambda: sent)
                assert 0 < written < MAX_PIPE_BYTES + (24 << 20), written
            finally:
                sock.close()
