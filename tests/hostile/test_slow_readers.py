"""Item 9: slow readers of big /poll answers hold bounded memory and are let go."""

from __future__ import annotations

import asyncio
import gc
import json
import socket
from collections.abc import AsyncIterator

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from rtplay.runtime.memory import TRIM_AFTER_RELEASES
from servers.core.context import HttpConfig
from servers.core.hub import Backlog, Hub
from servers.http.answers import (
    ANSWER_CHUNK_BYTES,
    answer_length,
    batch_pieces,
    is_large,
)
from servers.http.app import batch_json
from servers.runner import Server, ServerConfig
from tests.conftest import wait_until
from tests.hostile.conftest import HOST

MESSAGES = 4000
PAYLOAD = 200  # 4,000 envelopes of ~250 bytes: a ~1 MB answer to since=0


@given(st.integers(0, 900), st.integers(1, 400), st.integers(0, 50), st.integers(100, 5000))
def test_pieces_make_exactly_the_whole_answer(count: int, payload: int, cursor: int, size: int) -> None:
    hub = Hub(capacity=300, payload_size=payload)
    for i in range(count):
        hub.publish(float(i))
    backlog = hub.since(cursor)
    pieces = list(batch_pieces(backlog, hub.last_seq, size))
    assert "".join(pieces) == batch_json(backlog, hub.last_seq)
    assert answer_length(backlog, hub.last_seq) == len(batch_json(backlog, hub.last_seq))
    assert all(len(p) < size + payload + 100 for p in pieces)


@pytest.fixture
async def big_server() -> AsyncIterator[Server]:
    config = ServerConfig(rate=0, payload_size=PAYLOAD, http=HttpConfig(stream_write_timeout_s=0.3))
    server = Server(config)
    await server.start()
    for _ in range(MESSAGES):
        server.broadcaster.publish()
    try:
        yield server
    finally:
        await server.stop()


async def test_a_reader_gets_the_whole_big_answer_in_pieces(big_server: Server) -> None:
    assert is_large(big_server.hub.since(0))
    async with httpx.AsyncClient(trust_env=False) as http:
        response = await http.get(big_server.http_url + "/poll?since=0")
    body = json.loads(response.content)
    assert response.headers["content-length"] == str(len(response.content)) and len(response.content) > 10 * ANSWER_CHUNK_BYTES
    assert [m["seq"] for m in body["messages"]] == list(range(1, MESSAGES + 1)) and body["last"] == MESSAGES


async def test_a_reader_that_never_reads_is_disconnected_and_others_are_served(big_server: Server) -> None:
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect((HOST, big_server.http_port))
    try:
        sock.sendall(f"GET /poll?since=0 HTTP/1.1\r\nHost: {HOST}\r\n\r\n".encode())
        await wait_until(lambda: big_server.answers.cut == 1, 10, "the non-reader disconnected")
        async with httpx.AsyncClient(trust_env=False) as http:
            response = await http.get(big_server.http_url + f"/poll?since={MESSAGES - 3}")
        assert [m["seq"] for m in response.json()["messages"]] == [MESSAGES - 2, MESSAGES - 1, MESSAGES]
    finally:
        sock.close()


async def _non_reader(port: int) -> socket.socket:
    """A client asking for the whole buffer that reads nothing of the answer (connecting
    without blocking the loop: the server under test runs on it)."""
    loop = asyncio.get_running_loop()
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    await loop.sock_connect(sock, (HOST, port))
    await loop.sock_sendall(sock, f"GET /poll?since=0 HTTP/1.1\r\nHost: {HOST}\r\n\r\n".encode())
    return sock


def _backlogs() -> int:
    """Backlogs still in memory: a handler's held one is freed when it returns, unless a
    reference cycle (an exception's traceback through its frame) keeps it for the collector."""
    return sum(issubclass(type(o), Backlog) for o in gc.get_objects())  # type(): a dead weakref proxy refuses __class__


async def test_readers_that_left_or_were_cut_leave_no_cycle_holding_their_backlog(big_server: Server) -> None:
    gc.collect()
    gc.disable()  # what is freed must be freed by reference counting, as it is between collections
    socks: list[socket.socket] = []
    try:
        socks += [await _non_reader(big_server.http_port) for _ in range(2)]
        await wait_until(lambda: big_server.answers.cut == 2, 10, "two non-readers disconnected")
        socks += [await _non_reader(big_server.http_port) for _ in range(2)]
        for sock in socks:  # two more leave while their answers are being written
            sock.close()
        await wait_until(lambda: big_server.connections.live() == 0, 10, "every reader gone")
        await wait_until(lambda: _backlogs() == 0, 5, "no backlog kept alive after its reader went")
    finally:
        gc.enable()
        for sock in socks:
            sock.close()


async def test_memory_is_given_back_after_a_burst_of_slow_readers(big_server: Server) -> None:
    socks = [await _non_reader(big_server.http_port) for _ in range(TRIM_AFTER_RELEASES + 8)]
    try:
        for sock in socks:
            sock.close()
        await wait_until(lambda: big_server.memory.trims >= 1, 20, "the heap trimmed after the readers left")
    finally:
        for sock in socks:
            sock.close()
