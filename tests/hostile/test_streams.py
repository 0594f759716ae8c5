"""Probes 4, 5, 6 and 8: throttles that can be cleared, slow consumers cut with a reason,
replays that take turns with live traffic, and cursors ahead of the stream reset."""

from __future__ import annotations

import asyncio
import json
import logging
import socket
from typing import Any

import aiohttp
import pytest

from rtplay.protocol.faults import Kind
from servers.core.context import HttpConfig, Throttle
from servers.core.hub import Hub
from servers.core.pubsub import Broadcaster
from servers.runner import Server, ServerConfig
from tests.conftest import wait_until
from tests.hostile.conftest import HOST, exchange

AHEAD = 999_999_999_999


def publish(server: Server, n: int) -> None:
    for _ in range(n):
        server.broadcaster.publish()


async def sse_lines(response: aiohttp.ClientResponse, until: str, timeout: float = 3.0) -> str:
    """Read the event stream until ``until`` appears in it."""
    seen = ""
    async with asyncio.timeout(timeout):
        while until not in seen:
            seen += (await response.content.readany()).decode()
    return seen


# --- 4: a tiny throttle --------------------------------------------------------------------


async def test_a_tiny_throttle_can_be_cleared(server: Server) -> None:
    async with aiohttp.ClientSession() as http, http.get(server.http_url + "/sse") as response:
        await sse_lines(response, "retry:")
        server.add_fault(Kind.THROTTLE, "sse", 1e-6)
        publish(server, 100)  # far beyond the burst: a debt of ~years at 1e-6 KB/s
        await asyncio.sleep(0.2)  # the sender is now asleep on its debt
        server.clear_faults()
        publish(server, 1)
        await sse_lines(response, "id: 101\n")


async def test_a_throttled_handler_whose_client_left_unregisters(server: Server) -> None:
    server.add_fault(Kind.THROTTLE, "sse", 1e-6)
    async with aiohttp.ClientSession() as http, http.get(server.http_url + "/sse") as response:
        await sse_lines(response, "retry:")
        publish(server, 100)
        await wait_until(lambda: server.ctx.registry.count("sse") == 1, what="the stream")
    await wait_until(lambda: server.ctx.registry.count("sse") == 0, timeout=3, what="the handler to unregister")


# --- 5: slow stream consumers --------------------------------------------------------------

STREAM_REQUESTS = {
    "sse": b"GET /sse HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
    "ws": b"GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
}


@pytest.mark.parametrize("transport", sorted(STREAM_REQUESTS))
async def test_a_non_reading_stream_client_is_cut_and_told_why(transport: str, caplog: pytest.LogCaptureFixture) -> None:
    # ws: its envelopes go straight to the transport, a batch per write; the deadline runs
    # while the transport is paused (SSE: while aiohttp's write waits for the drain). The
    # peer then has GOODBYE_TIMEOUT_S to read up to the reason, so it reads once it is cut.
    caplog.set_level(logging.INFO, logger="servers")
    config = ServerConfig(rate=0, payload_size=4_000, queue_size=64, http=HttpConfig())
    config.http.stream_write_timeout_s = 0.5
    server = Server(config)
    await server.start()
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    try:
        sock.connect((HOST, server.http_port))
        sock.sendall(STREAM_REQUESTS[transport])
        await wait_until(lambda: server.ctx.registry.count(transport) == 1, what="the stream")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 8
        while "closing a slow consumer" not in caplog.text and loop.time() < deadline:
            publish(server, 40)  # ~160 KB a round: the kernel buffers fill, then the writer blocks
            await asyncio.sleep(0.02)
        received = await asyncio.to_thread(read_to_eof, sock)
        assert b"consumer too slow" in received
        await wait_until(lambda: server.ctx.registry.count(transport) == 0, what=f"the slow {transport} consumer gone")
    finally:
        sock.close()
        await server.stop()


def read_to_eof(sock: socket.socket) -> bytes:
    sock.settimeout(5)
    chunks = []
    try:
        while chunk := sock.recv(1 << 20):
            chunks.append(chunk)
    except (ConnectionError, TimeoutError):
        pass
    return b"".join(chunks)


# --- 6: replay bursts ----------------------------------------------------------------------


class FastWire:
    """A response whose writes never wait (a consumer with an infinite kernel buffer)."""

    def __init__(self) -> None:
        self.bytes = 0

    async def write(self, data: bytes) -> None:
        self.bytes += len(data)


async def test_a_long_replay_takes_turns_with_the_loop() -> None:
    """10,000 buffered envelopes replayed to a consumer that never pushes back must still let
    other connections (live clients) run in between, batch by batch."""
    from servers.http.sse import _SseStream
    from servers.http.streams import replay  # the replay writer itself
    hub = Hub(10_000)
    broadcaster = Broadcaster(hub)
    for _ in range(10_000):
        broadcaster.publish()
    server = Server(ServerConfig(rate=0))
    sub, backlog = broadcaster.subscribe(0)
    wire = FastWire()
    stream = _SseStream(server.ctx, sub, Throttle(server.ctx, "sse"), wire)  # type: ignore[arg-type]
    turns = 0
    done = False

    async def live_client() -> None:
        nonlocal turns
        while not done:
            turns += 1
            await asyncio.sleep(0)

    other = asyncio.create_task(live_client())
    try:
        assert await replay(stream, backlog, 0) == 10_000
    finally:
        done = True
        await other
    assert wire.bytes > 10_000 * 50
    assert turns >= 10_000 // 256 - 1, f"the live client ran only {turns} times during the replay"


# --- 8: cursors ahead of the stream --------------------------------------------------------


async def test_a_cursor_ahead_of_the_stream_is_reset_on_every_http_transport(server: Server) -> None:
    publish(server, 3)
    port = server.http_port
    body = (await exchange(port, f"GET /poll?since={AHEAD} HTTP/1.1\r\nHost: {HOST}\r\nConnection: close\r\n\r\n".encode()))
    payload = json.loads(body.split(b"\r\n\r\n", 1)[1])
    assert payload["reset"] == {"since": AHEAD, "first": 1}  # everything it has, from the start
    async with aiohttp.ClientSession() as http:
        async with asyncio.timeout(3), http.get(f"{server.http_url}/longpoll?since={AHEAD}&timeout=30") as r:
            assert (await r.json())["reset"]["first"] == 1  # at once, not after the hold
        async with http.get(server.http_url + "/sse", headers={"Last-Event-ID": str(AHEAD)}) as r:
            assert "event: reset" in await sse_lines(r, "event: reset")
        async with http.ws_connect(f"{server.http_url.replace('http', 'ws')}/ws?since={AHEAD}") as ws:
            first: Any = json.loads((await ws.receive(timeout=3)).data)
            assert first == {"reset": {"since": AHEAD, "first": 1}}
