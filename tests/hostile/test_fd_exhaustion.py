"""Item 2: idle sockets and bodiless request heads must not fill the descriptor table.

The control listener closes silent sockets like the HTTP one, a request body has a deadline on
both, and a connection cap shared by both listeners sheds the oldest idle connection first:
a small cap and a few sockets prove the bound (the 20,000-socket version is
``benchmarks/hostile.py``).
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator

import aiohttp
import pytest

from servers.core.context import HttpConfig
from servers.runner import Server, ServerConfig
from tests.hostile.conftest import HOST, eof_within, exchange

TIMEOUT_S = 0.5
"""The header, idle and body timeouts the probes run with (the defaults are 10 s)."""

CAP = 6


@pytest.fixture
async def strict_server() -> AsyncIterator[Server]:
    config = ServerConfig(rate=0, http=HttpConfig(header_timeout_s=TIMEOUT_S, idle_timeout_s=TIMEOUT_S),
                          body_timeout_s=TIMEOUT_S, max_connections=CAP)
    server = Server(config)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


async def test_a_silent_socket_on_the_control_port_is_closed(strict_server: Server) -> None:
    sock = socket.create_connection((HOST, strict_server.control.port))
    try:
        assert await eof_within(sock, 10 * TIMEOUT_S)
    finally:
        sock.close()


@pytest.mark.parametrize(("listener", "path"), [("control", "/control/faults"), ("http", "/rtc/offer"), ("http", "/browser/report")])
async def test_a_request_head_whose_body_never_comes_gets_a_408_and_is_closed(strict_server: Server, listener: str, path: str) -> None:
    port = strict_server.control.port if listener == "control" else strict_server.http_port
    head = (f"POST {path} HTTP/1.1\r\nHost: {HOST}:{port}\r\nContent-Type: application/json\r\n"
            "Content-Length: 100\r\n\r\n{").encode()
    answer = await exchange(port, head, timeout=10 * TIMEOUT_S)  # reads until the server closes it
    # A 408, or (a caller that may not report) the refusal sent before any body: then closed.
    assert answer.startswith((b"HTTP/1.1 408 ", b"HTTP/1.1 403 "))
    assert strict_server.connections.body_timeouts == 1


async def test_at_the_cap_the_oldest_idle_connection_is_shed_and_streams_are_kept(strict_server: Server) -> None:
    async with aiohttp.ClientSession() as http, http.get(strict_server.http_url + "/sse") as stream:
        await stream.content.readline()  # the stream is up (a busy connection)
        idle = [socket.create_connection((HOST, strict_server.http_port)) for _ in range(CAP - 1)]
        idle.append(socket.create_connection((HOST, strict_server.control.port)))  # both listeners count
        try:
            # One more than the cap: the oldest idle socket makes room, the newest ones stay.
            answer = await exchange(strict_server.http_port, f"GET /poll HTTP/1.1\r\nHost: {HOST}\r\nConnection: close\r\n\r\n".encode())
            assert answer.startswith(b"HTTP/1.1 200 ")
            assert await eof_within(idle[0], 2.0)
            assert strict_server.connections.shed >= 1
            strict_server.broadcaster.publish()
            async with asyncio.timeout(5):
                while b"id: 1" not in await stream.content.readline():
                    pass  # the busy stream was not shed
        finally:
            for sock in idle:
                sock.close()


async def test_when_nothing_is_idle_a_newcomer_gets_a_503(strict_server: Server) -> None:
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:
        streams = [await http.get(strict_server.http_url + "/sse") for _ in range(CAP)]
        try:
            for stream in streams:
                await stream.content.readline()
            answer = await exchange(strict_server.http_port, f"GET /poll HTTP/1.1\r\nHost: {HOST}\r\n\r\n".encode())
            assert answer.startswith(b"HTTP/1.1 503 ")
            assert strict_server.connections.refused == 1
        finally:
            for stream in streams:
                stream.close()
