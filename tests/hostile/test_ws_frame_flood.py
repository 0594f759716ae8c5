"""Item 5: a flood of WebSocket frames (empty continuations above all) is cut with 1008."""

from __future__ import annotations

import asyncio
import json

import aiohttp

from servers.http.wsguard import MAX_FRAMES_PER_MESSAGE, MAX_FRAMES_PER_S, MaskCheck
from servers.runner import Server
from tests.hostile.conftest import HOST


def masked(first: int, payload: bytes = b"") -> bytes:
    """One client frame: ``first`` byte (FIN + opcode), masked with a zero key."""
    return bytes([first, 0x80 | len(payload)]) + b"\0\0\0\0" + payload


TEXT_START = masked(0x01, b"x")  # a text frame without FIN: a message begins
EMPTY_CONTINUATION = masked(0x00)
LAST_CONTINUATION = masked(0x80)


def test_a_message_in_too_many_frames_fails_with_1008() -> None:
    check = MaskCheck()
    assert check.feed(TEXT_START + EMPTY_CONTINUATION * (MAX_FRAMES_PER_MESSAGE - 2) + LAST_CONTINUATION, 0.0)
    assert check.feed(TEXT_START + EMPTY_CONTINUATION * MAX_FRAMES_PER_MESSAGE, 0.5) is False
    assert check.code == 1008 and "frames" in check.reason


def test_frames_per_second_are_bounded_but_a_steady_client_is_not_cut() -> None:
    steady = MaskCheck()
    for second in range(5):  # MAX_FRAMES_PER_S a second, five seconds running
        assert steady.feed(masked(0x89) * MAX_FRAMES_PER_S, float(second))  # pings, each alone
    flood = MaskCheck()
    assert flood.feed(masked(0x81, b"a") * (MAX_FRAMES_PER_S + 1), 10.0) is False
    assert flood.code == 1008


def test_an_unmasked_frame_is_still_a_1002() -> None:
    check = MaskCheck()
    assert check.feed(b"\x81\x01a", 0.0) is False and check.code == 1002


async def test_a_continuation_flood_is_closed_with_1008_and_others_go_on(server: Server) -> None:
    url = server.http_url.replace("http", "ws") + "/ws"
    async with aiohttp.ClientSession() as http, http.ws_connect(url) as healthy:
        reader, writer = await asyncio.open_connection(HOST, server.http_port)
        try:
            writer.write(
                f"GET /ws HTTP/1.1\r\nHost: {HOST}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n".encode()
            )
            async with asyncio.timeout(5):
                assert b" 101 " in await reader.readuntil(b"\r\n\r\n")
                writer.write(TEXT_START + EMPTY_CONTINUATION * (MAX_FRAMES_PER_MESSAGE * 4))
                tail = await reader.read(-1)  # the server closes the connection
            assert b"\x88" in tail and (1008).to_bytes(2, "big") in tail
        finally:
            writer.close()
        await healthy.send_str(json.dumps({"ping": 1.5}))
        answer = await healthy.receive(timeout=5)
        assert json.loads(answer.data) == {"pong": 1.5}
