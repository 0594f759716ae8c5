"""Item 13: an idle subscriber costs no task wake-up per message: the publisher writes the
envelope to every idle SSE and WebSocket connection itself, encoded once for all of them."""

from __future__ import annotations

import asyncio
import gc
import socket
from collections.abc import AsyncIterator

import pytest
from aiohttp.web_protocol import RequestHandler

from servers.core.context import HttpConfig
from servers.core.hub import Backlog
from servers.http.ws_heartbeat import PING_FRAME
from servers.runner import Server, ServerConfig
from tests.conftest import wait_until
from tests.hostile.conftest import HOST

SUBSCRIBERS = 70  # per transport: together more than a burst that gives memory back

WS_UPGRADE = (
    "GET /ws HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
)


@pytest.fixture
async def server() -> AsyncIterator[Server]:
    server = Server(ServerConfig(rate=0))
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


async def _subscriber(port: int, request: str) -> socket.socket:
    loop = asyncio.get_running_loop()
    sock = socket.socket()
    sock.setblocking(False)
    await loop.sock_connect(sock, (HOST, port))
    await loop.sock_sendall(sock, request.format(host=HOST).encode())
    return sock


async def _read_until(sock: socket.socket, marker: bytes) -> bytes:
    loop = asyncio.get_running_loop()
    data = b""
    while marker not in data:
        chunk = await loop.sock_recv(sock, 65536)
        assert chunk, "the server closed the stream"
        data += chunk
    return data


async def test_a_publish_reaches_every_idle_subscribers_socket_before_the_loop_runs_again(server: Server) -> None:
    port = server.http_port
    sse = [await _subscriber(port, "GET /sse HTTP/1.1\r\nHost: {host}\r\n\r\n") for _ in range(SUBSCRIBERS)]
    ws = [await _subscriber(port, WS_UPGRADE) for _ in range(SUBSCRIBERS)]
    socks = sse + ws
    try:
        await wait_until(lambda: server.broadcaster.subscriber_count == 2 * SUBSCRIBERS, 10, "every subscription")
        server.broadcaster.publish()  # a first envelope: every stream is then live and waiting
        for sock in socks:
            await _read_until(sock, b'"seq":1,')
        await asyncio.sleep(0)  # the streams' tasks (if any woke) go back to waiting

        server.broadcaster.publish()
        # The event loop does not run from here on: whatever arrives was written by publish().
        for sock in socks:
            sock.setblocking(True)
            sock.settimeout(2.0)
            data = b""
            while b'"seq":2,' not in data:
                data += sock.recv(65536)
        assert server.broadcaster.subscriber_count == 2 * SUBSCRIBERS
    finally:
        for sock in socks:
            sock.close()


def _handlers() -> int:
    # type(), not isinstance(): isinstance reads __class__, which a dead weakref proxy refuses.
    return sum(issubclass(type(o), RequestHandler) for o in gc.get_objects())


async def test_subscribers_that_left_are_forgotten_and_the_heap_trimmed(server: Server) -> None:
    before = _handlers()
    port = server.http_port
    socks = [await _subscriber(port, "GET /sse HTTP/1.1\r\nHost: {host}\r\n\r\n") for _ in range(SUBSCRIBERS)]
    socks += [await _subscriber(port, WS_UPGRADE) for _ in range(SUBSCRIBERS)]
    try:
        await wait_until(lambda: server.broadcaster.subscriber_count == 2 * SUBSCRIBERS, 10, "every subscription")
        assert _handlers() >= before + 2 * SUBSCRIBERS
    finally:
        for sock in socks:
            sock.close()
    await wait_until(lambda: server.ctx.registry.count("ws") == 0, 10, "the WebSockets' closes read")
    server.broadcaster.publish()  # an SSE stream learns its peer left when it next writes
    await wait_until(lambda: server.memory.trims >= 1, 10, "the memory given back after they left")
    # Nothing keeps their connections' handlers (and what they hold) alive any more.
    assert _handlers() <= before


async def test_a_websocket_has_no_heartbeat_task_of_its_own() -> None:
    # A 30 s heartbeat, on but not due while they connect: at 0.2 s the first silent peers
    # were dropped before a busy machine had opened the last, and all were never in at once.
    server = Server(ServerConfig(rate=0, http=HttpConfig(ws_heartbeat_s=30)))
    await server.start()
    socks: list[socket.socket] = []
    try:
        before = len(asyncio.all_tasks())
        socks = [await _subscriber(server.http_port, WS_UPGRADE) for _ in range(SUBSCRIBERS)]
        await wait_until(lambda: server.broadcaster.subscriber_count == SUBSCRIBERS, 10, "every subscription")
        # aiohttp's two (the connection's and the request's) and the stream's sender; the
        # heartbeats of all share one timer (each had a task of its own: four per connection).
        assert len(asyncio.all_tasks()) - before <= 3 * SUBSCRIBERS
    finally:
        for sock in socks:
            sock.close()
        await server.stop()


async def test_the_shared_heartbeat_drops_every_peer_that_answers_no_ping() -> None:
    server = Server(ServerConfig(rate=0, http=HttpConfig(ws_heartbeat_s=0.2)))
    await server.start()
    socks: list[socket.socket] = []
    try:
        socks = [await _subscriber(server.http_port, WS_UPGRADE) for _ in range(SUBSCRIBERS)]
        # Each is pinged, then dropped (0.2 s heartbeat: within about 0.3 s of its last byte):
        # every socket's stream ends, a ping before the end.
        for sock in socks:
            async with asyncio.timeout(5):
                data = await _read_until_closed(sock)
            assert data.startswith(b"HTTP/1.1 101") and PING_FRAME in data, data[:200]
        await wait_until(lambda: server.ctx.registry.count("ws") == 0, 5, "the dropped peers gone from the registry")
    finally:
        for sock in socks:
            sock.close()
        await server.stop()


async def _read_until_closed(sock: socket.socket) -> bytes:
    loop = asyncio.get_running_loop()
    data = b""
    while chunk := await loop.sock_recv(sock, 65536):
        data += chunk
    return data


HELD_LONGPOLLS = 200


async def _answer(sock: socket.socket) -> tuple[bytes, bytes]:
    """The status line and body of the one HTTP answer on ``sock``."""
    data = await _read_until(sock, b"\r\n\r\n")
    head, _, body = data.partition(b"\r\n\r\n")
    length = int(next(line.split(b":")[1] for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:")))
    while len(body) < length:
        chunk = await asyncio.get_running_loop().sock_recv(sock, 65536)
        assert chunk, "the server closed the connection mid-answer"
        body += chunk
    return head.split(b"\r\n")[0], body


async def test_one_publish_answers_every_held_long_poll_from_one_backlog_read(
    server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Item 13: 5,000 held long-polls cost 1.8 s p99 a wave, each woken to read the backlog
    and build its own body. Held at the head, they share one cursor: one read, one body."""
    socks = [
        await _subscriber(server.http_port, "GET /longpoll?since=0&timeout=30 HTTP/1.1\r\nHost: {host}\r\n\r\n")
        for _ in range(HELD_LONGPOLLS)
    ]
    try:
        await wait_until(lambda: server.ctx.registry.count("longpoll") == HELD_LONGPOLLS, 10, "every long-poll held")
        reads: list[int] = []
        since = server.hub.since

        def counted(cursor: int) -> Backlog:
            reads.append(cursor)
            return since(cursor)

        monkeypatch.setattr(server.hub, "since", counted)
        envelope = server.broadcaster.publish()
        expected = b'{"messages":[' + envelope.json.encode() + b'],"last":1}'
        for sock in socks:
            assert await _answer(sock) == (b"HTTP/1.1 200 OK", expected)
        assert reads == [0]  # was one per held request
        await wait_until(lambda: server.ctx.registry.count("longpoll") == 0, 10, "every long-poll answered")
    finally:
        for sock in socks:
            sock.close()


async def test_answered_long_polls_on_live_connections_schedule_no_heap_trim(server: Server) -> None:
    """Each answered long-poll counted as a connection gone: at 5,000 long-pollers and 1 msg/s
    the server ran a full collection and a heap trim every 2 s. Only a client that left counts."""
    request = "GET /longpoll?since={cursor}&timeout=30 HTTP/1.1\r\nHost: {host}\r\n\r\n"
    socks = [await _subscriber(server.http_port, request.replace("{cursor}", "0")) for _ in range(HELD_LONGPOLLS)]
    try:
        await wait_until(lambda: server.ctx.registry.count("longpoll") == HELD_LONGPOLLS, 10, "every long-poll held")
        server.broadcaster.publish()
        for sock in socks:
            await _answer(sock)
        await wait_until(lambda: server.ctx.registry.count("longpoll") == 0, 10, "every long-poll answered")
        assert server.memory.schedule.pending == 0  # was one release per answer: a trim due
        # A client that leaves while held: its request ends (at its short hold's deadline, long
        # after the server read the close) on a connection that ended with it.
        leaving = socks.pop()
        short = request.format(cursor=1, host=HOST).replace("timeout=30", "timeout=0.5")
        await asyncio.get_running_loop().sock_sendall(leaving, short.encode())
        await wait_until(lambda: server.ctx.registry.count("longpoll") == 1, 10, "the leaving client held")
        leaving.close()
        await wait_until(lambda: server.ctx.registry.count("longpoll") == 0, 10, "its hold ended")
        assert server.memory.schedule.pending == 1
    finally:
        for sock in socks:
            sock.close()
