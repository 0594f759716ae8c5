"""Probes 7, 9 and 10: header and idle timeouts, one log line per bad request, and
WebSocket messages or frames that break the rules closing with a stated code."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import struct
from collections.abc import AsyncIterator

import aiohttp
import pytest

from servers.core.context import HttpConfig
from servers.runner import Server, ServerConfig
from tests.hostile.conftest import HOST, eof_within, exchange

TIMEOUT_S = 0.5
"""The header and idle timeouts the probes run with (the default is 10 s)."""


@pytest.fixture
async def strict_server() -> AsyncIterator[Server]:
    config = ServerConfig(rate=0, http=HttpConfig())
    config.http.header_timeout_s = TIMEOUT_S
    config.http.idle_timeout_s = TIMEOUT_S
    server = Server(config)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


def connect(server: Server) -> socket.socket:
    sock = socket.create_connection((HOST, server.http_port))
    return sock


# --- 7: timeouts ---------------------------------------------------------------------------


async def test_a_silent_connection_is_closed(strict_server: Server) -> None:
    sock = connect(strict_server)
    try:
        assert await eof_within(sock, 10 * TIMEOUT_S)
    finally:
        sock.close()


async def test_a_slowloris_is_closed(strict_server: Server) -> None:
    sock = connect(strict_server)
    sock.setblocking(False)
    loop = asyncio.get_running_loop()
    try:
        await loop.sock_sendall(sock, b"GET /poll HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
        for i in range(int(20 * TIMEOUT_S / 0.1)):  # one header byte every 100 ms, never done
            try:
                await loop.sock_sendall(sock, b"\r\nX-Slow: " if i % 10 == 9 else b"a")
            except ConnectionError:
                return  # closed: good
            await asyncio.sleep(0.1)
        assert await eof_within(sock, 0.1), "a request head trickling in forever was never cut"
    finally:
        sock.close()


async def test_an_idle_keep_alive_connection_is_closed(strict_server: Server) -> None:
    sock = connect(strict_server)
    try:
        sock.sendall(b"GET /poll HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        assert await eof_within(sock, 10 * TIMEOUT_S)  # the answer is read, then the close
    finally:
        sock.close()


# --- 9: log floods -------------------------------------------------------------------------


async def test_a_bad_request_is_one_log_line_without_a_traceback(
    strict_server: Server, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    bad = b"GET /poll HTTP/1.1\r\nHost: 127.0.0.1\r\nBroken header line\r\n\r\n"
    for _ in range(3):
        answer = await exchange(strict_server.http_port, bad)
        assert answer.startswith(b"HTTP/1.") and answer[8:13] == b" 400 "
    records = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(records) <= 3 and all(r.exc_info is None and r.exc_text is None for r in records), [
        r.getMessage()[:80] for r in records
    ]


async def test_a_lost_sse_connection_logs_no_traceback(strict_server: Server, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    sock = connect(strict_server)
    sock.sendall(b"GET /sse HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    await asyncio.to_thread(sock.recv, 4096)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()  # a reset, mid-stream
    for _ in range(200):
        strict_server.broadcaster.publish()
        await asyncio.sleep(0.005)
        if strict_server.ctx.registry.count("sse") == 0:
            break
    assert strict_server.ctx.registry.count("sse") == 0
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING and r.exc_info]


# --- 10: WebSocket -------------------------------------------------------------------------


async def test_a_deeply_nested_ws_message_is_refused_with_a_close_frame(strict_server: Server) -> None:
    url = strict_server.http_url.replace("http", "ws") + "/ws"
    async with aiohttp.ClientSession() as http, http.ws_connect(url) as ws:
        await ws.send_str("[" * 2000 + "]" * 2000)
        closing = await ws.receive(timeout=3)
        assert closing.type is aiohttp.WSMsgType.CLOSE
        assert ws.close_code in (1007, 1009) and "nested" in (closing.extra or "")


def ws_handshake(port: int) -> socket.socket:
    sock = socket.create_connection((HOST, port), timeout=3)
    sock.sendall(
        b"GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    head = b""
    while b"\r\n\r\n" not in head:
        head += sock.recv(1)
    assert head.startswith(b"HTTP/1.1 101")
    return sock


async def test_an_unmasked_client_frame_closes_the_connection_with_1002(strict_server: Server) -> None:
    sock = await asyncio.to_thread(ws_handshake, strict_server.http_port)
    try:
        payload = b'{"ping": 1}'
        sock.sendall(bytes([0x81, len(payload)]) + payload)  # FIN text frame, MASK bit clear
        data = await asyncio.to_thread(read_all, sock)
        assert b'"pong"' not in data
        close = data.find(b"\x88")
        assert close >= 0 and struct.unpack("!H", data[close + 2 : close + 4])[0] == 1002
    finally:
        sock.close()


async def test_masked_frames_still_work(strict_server: Server) -> None:
    sock = await asyncio.to_thread(ws_handshake, strict_server.http_port)
    try:
        payload = b'{"ping": 1}'
        mask = os.urandom(4)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        sock.sendall(bytes([0x81, 0x80 | len(payload)]) + mask + masked)
        sock.settimeout(3)
        assert b'"pong"' in await asyncio.to_thread(sock.recv, 4096)
    finally:
        sock.close()


def read_all(sock: socket.socket) -> bytes:
    sock.settimeout(3)
    data = b""
    try:
        while chunk := sock.recv(4096):
            data += chunk
    except (TimeoutError, ConnectionError):
        pass
    return data
