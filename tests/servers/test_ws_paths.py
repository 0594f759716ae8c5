"""The /ws endpoint's fast paths say exactly what the slow ones say, and its own heartbeat."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import aiohttp
import pytest
from hypothesis import given
from hypothesis import strategies as st

from rtplay.protocol.strictjson import JsonError, JsonTooDeep, loads_strict, nesting_depth, within_depth
from servers.core.context import HttpConfig
from servers.http.ws import ping_number, stamp_of
from servers.http.ws_heartbeat import CHECKS_PER_INTERVAL, Liveness, PeerVerdict
from servers.http.wsguard import MaskCheck, text_frames
from servers.runner import Server, ServerConfig
from tests.hostile.conftest import eof_within
from tests.hostile.test_connections import ws_handshake

# --- strict JSON: the bracket count before the depth walk ----------------------------------------

JSONISH = st.text(alphabet='[]{}"\\ a1,:', max_size=80)


@given(JSONISH, st.integers(min_value=0, max_value=6))
def test_within_depth_agrees_with_the_walk(text: str, limit: int) -> None:
    assert within_depth(text, limit) == (nesting_depth(text, limit) <= limit)


def test_brackets_inside_strings_do_not_count_as_depth() -> None:
    text = '{"a": "' + "[" * 100 + '"}'
    assert within_depth(text, 2) and loads_strict(text) == {"a": "[" * 100}
    with pytest.raises(JsonTooDeep):
        loads_strict("[" * 40 + "]" * 40)


def test_loads_strict_still_refuses_what_is_not_json() -> None:
    for bad in ("NaN", '{"a": Infinity}', "1e999", "\ufeff{}", "{", b"\xff"):
        with pytest.raises(JsonError):
            loads_strict(bad)


# --- the ping: read without the parser, answered with the same number ----------------------------


def slow_number(text: str) -> str:
    """What the strict parser makes of a ping: the reference for the fast path."""
    return repr(stamp_of(loads_strict(text)))


NUMBERS = st.one_of(
    st.integers().map(str),
    st.floats(allow_nan=False, allow_infinity=False).map(repr),
    st.from_regex(r"-?(0|[1-9][0-9]{0,320})(\.[0-9]{1,5})?([eE][+-]?[0-9]{1,3})?", fullmatch=True),
)


@given(NUMBERS, st.sampled_from(['{"ping": %s}', '{"ping":%s}', '{ "ping": %s }', '{"ping": %s, "x": 1}']))
def test_the_ping_fast_path_answers_what_the_parser_would(number: str, template: str) -> None:
    text = template % number
    try:
        expected: float | None = json.loads(slow_number(text))
    except (JsonError, KeyError, TypeError):
        expected = None
    try:
        got: float | None = json.loads(ping_number(text))
    except (JsonError, KeyError, TypeError):
        got = None
    assert got == expected  # the same number (or the same refusal), whichever path read it


@pytest.mark.parametrize("text", ['{"ping": "1"}', '{"ping": true}', '{"pong": 1}', "[1]", '{"ping": 1e400}', '{"ping": 01}'])
def test_what_is_no_ping_is_refused(text: str) -> None:
    with pytest.raises((JsonError, KeyError, TypeError)):
        ping_number(text)


@pytest.fixture
async def ws_server() -> AsyncIterator[Server]:
    server = Server(ServerConfig(rate=0, http=HttpConfig(ws_heartbeat_s=0.2)))
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


async def test_a_ping_with_a_huge_integer_is_answered_not_crashed_on(ws_server: Server) -> None:
    # An integer is finite at any size; math.isfinite() used to raise OverflowError on it.
    url = ws_server.http_url.replace("http", "ws") + "/ws"
    huge = "9" * 400
    async with aiohttp.ClientSession() as http, http.ws_connect(url) as ws:
        await ws.send_str(f'{{"ping": {huge}}}')
        answer = await ws.receive(timeout=3)
    assert answer.type is aiohttp.WSMsgType.TEXT and json.loads(answer.data) == {"pong": int(huge)}


# --- the mask check reads whole headers in place -------------------------------------------------


def frame(payload_len: int, masked: bool) -> bytes:
    bit = 0x80 if masked else 0
    if payload_len < 126:
        head = bytes([0x81, bit | payload_len])
    elif payload_len < 65536:
        head = bytes([0x81, bit | 126]) + payload_len.to_bytes(2, "big")
    else:
        head = bytes([0x81, bit | 127]) + payload_len.to_bytes(8, "big")
    return head + (b"MASK" if masked else b"") + bytes(payload_len)


FRAMES = st.lists(
    st.tuples(st.sampled_from([0, 1, 30, 125, 126, 300, 65536]), st.sampled_from([True, True, True, False])),
    min_size=1, max_size=5,
)


@given(FRAMES, st.lists(st.integers(min_value=0, max_value=70_000), max_size=6), st.integers(min_value=0, max_value=70_000))
def test_the_mask_check_in_any_split_agrees_with_byte_by_byte(frames: list[tuple[int, bool]], cuts: list[int], cut_off: int) -> None:
    stream = b"".join(frame(n, masked) for n, masked in frames)
    stream = stream[: max(cut_off, len(stream) // 2)]
    byte_by_byte = MaskCheck()  # one byte per feed: never the in-place path
    for i in range(len(stream)):
        byte_by_byte.feed(stream[i : i + 1], 0.0)
    chunked, start = MaskCheck(), 0
    for end in [*sorted(c for c in cuts if c <= len(stream)), len(stream)]:
        chunked.feed(stream[start:end], 0.0)
        start = end
    assert chunked.failed == byte_by_byte.failed
    assert chunked.failed == any(not masked for _, masked in frames[: count_frames(stream, frames)])


def count_frames(stream: bytes, frames: list[tuple[int, bool]]) -> int:
    """How many of ``frames`` have at least their first two bytes in ``stream``."""
    at = 0
    for i, (n, masked) in enumerate(frames):
        if at + 2 > len(stream):
            return i
        at += len(frame(n, masked))
    return len(frames)


# --- the heartbeat -------------------------------------------------------------------------------


def test_liveness_pings_a_quiet_peer_then_gives_it_up() -> None:
    live = Liveness()
    verdicts = [live.check(0) for _ in range(CHECKS_PER_INTERVAL + 1)]
    assert verdicts == [PeerVerdict.ALIVE] * (CHECKS_PER_INTERVAL - 1) + [PeerVerdict.PING, PeerVerdict.DEAD]


def test_any_byte_from_the_peer_counts_as_life() -> None:
    live = Liveness()
    assert [live.check(n) for n in (0, 0, 6, 6, 6, 12)] == [
        PeerVerdict.ALIVE, PeerVerdict.PING, PeerVerdict.ALIVE, PeerVerdict.ALIVE, PeerVerdict.PING, PeerVerdict.ALIVE,
    ]


async def test_a_peer_that_answers_no_ping_is_dropped(ws_server: Server) -> None:
    sock = await asyncio.to_thread(ws_handshake, ws_server.http_port)
    try:
        # 0.2 s heartbeat: pinged within 0.2 s of silence, dropped 0.1 s later.
        assert await eof_within(sock, 3.0)
    finally:
        sock.close()


async def test_a_peer_that_answers_pings_stays(ws_server: Server) -> None:
    url = ws_server.http_url.replace("http", "ws") + "/ws"
    async with aiohttp.ClientSession() as http, http.ws_connect(url, autoping=True) as ws:
        # aiohttp's client answers the server's pings inside receive(), which returns only
        # when something else comes: a close, had the server given up on this peer.
        receiving = asyncio.create_task(ws.receive())
        try:
            done, _ = await asyncio.wait({receiving}, timeout=1.0)  # five heartbeat intervals
        finally:
            receiving.cancel()
            await asyncio.gather(receiving, return_exceptions=True)
        assert not done and not ws.closed


# --- envelopes written as frames of our own, a batch per write -----------------------------------


@pytest.mark.parametrize("size", [0, 125, 126, 65535, 65536])
def test_text_frames_are_what_a_websocket_reader_parses(size: int) -> None:
    from websockets.frames import Frame, Opcode
    from websockets.streams import StreamReader

    texts = ["x" * size, "é"]
    reader = StreamReader()
    reader.feed_data(text_frames(texts))
    got = []
    for _ in texts:
        parser = Frame.parse(reader.read_exact, mask=False)
        try:
            next(parser)
        except StopIteration as done:
            got.append(done.value)
    assert [(f.opcode, f.fin, f.data.decode()) for f in got] == [(Opcode.TEXT, True, t) for t in texts]
