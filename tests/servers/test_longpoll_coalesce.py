"""A long-poll answer on a dense stream waits a little to carry many messages; on a sparse
stream it goes out at once."""

from __future__ import annotations

import time

import aiohttp
import pytest

from servers.http.longpoll import DENSE_GAP_MS, LONGPOLL_COALESCE_S, coalesce_delay
from servers.runner import Server, ServerConfig

WINDOW_MS = LONGPOLL_COALESCE_S * 1000


def test_a_sparse_stream_is_answered_at_once() -> None:
    assert coalesce_delay(1000.0, None, 1000.0) == 0.0  # a single envelope so far
    assert coalesce_delay(1000.0, DENSE_GAP_MS, 1000.0) == 0.0
    assert coalesce_delay(1000.0, 100.0, 1000.0) == 0.0  # 10 msg/s


def test_a_dense_stream_waits_until_the_oldest_message_is_one_window_old() -> None:
    assert coalesce_delay(1000.0, 1.0, 1000.0) == pytest.approx(LONGPOLL_COALESCE_S)
    assert coalesce_delay(1000.0, 0.0, 1000.0 + WINDOW_MS / 2) == pytest.approx(LONGPOLL_COALESCE_S / 2)
    assert coalesce_delay(1000.0, 1.0, 1000.0 + WINDOW_MS * 3) == 0.0  # a backlog: at once


async def test_long_polls_at_1000_per_second_carry_many_messages_each() -> None:
    server = Server(ServerConfig(rate=1000))
    await server.start()
    try:
        sizes, latest = [], []
        async with aiohttp.ClientSession() as http:
            cursor = 0
            for _ in range(12):
                async with http.get(f"{server.http_url}/longpoll", params={"since": cursor, "timeout": "5"}) as r:
                    body = await r.json()
                received_ms = time.time() * 1000
                cursor = body["last"]
                sizes.append(len(body["messages"]))
                latest.append(received_ms - body["messages"][0]["t"])
        sizes, latest = sizes[2:], latest[2:]  # the first answers carry the start-up backlog
        assert sum(sizes) / len(sizes) >= 8, sizes  # one publisher burst (~4) each without the window
        assert max(latest) < WINDOW_MS + 200, latest  # held about one window, not longer
    finally:
        await server.stop()
