"""The ws client's connection (websockets' Sans-I/O protocol in an asyncio Protocol) against a
scripted WebSocket server on 127.0.0.1: whole messages from fragments, pings answered, a
refused or cut handshake, the server's close code, bad UTF-8, a burst beyond the queue."""

from __future__ import annotations

import asyncio
import base64
import gc
import hashlib
import struct
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import pytest
from websockets.exceptions import ConnectionClosed, InvalidMessage, InvalidStatus

from rtplay.clients.ws import WebSocketClient, closed_reason
from rtplay.clients.ws_wire import MAX_FRAGMENTS, MAX_QUEUED, WsWire
from rtplay.protocol.envelope import ProtocolError
from tests.conftest import wait_until

TEXT, BINARY, CONT, CLOSE, PING, PONG = 0x1, 0x2, 0x0, 0x8, 0x9, 0xA
GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

Script = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


def frame(opcode: int, payload: bytes, fin: bool = True) -> bytes:
    """A server→client frame (unmasked, RFC 6455 §5.2), payload under 64 KiB."""
    head = bytes([(0x80 if fin else 0) | opcode])
    if len(payload) < 126:
        return head + bytes([len(payload)]) + payload
    return head + bytes([126]) + struct.pack("!H", len(payload)) + payload


async def read_frame(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    """A client→server frame (masked): (opcode, unmasked payload)."""
    b0, b1 = await reader.readexactly(2)
    length = b1 & 0x7F
    if length == 126:
        (length,) = struct.unpack("!H", await reader.readexactly(2))
    mask = await reader.readexactly(4)
    data = await reader.readexactly(length)
    return b0 & 0x0F, bytes(b ^ mask[i % 4] for i, b in enumerate(data))


async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Read the client's upgrade request and answer 101 with its key's accept value."""
    head = (await reader.readuntil(b"\r\n\r\n")).decode()
    key = next(line.split(":", 1)[1].strip() for line in head.split("\r\n") if line.lower().startswith("sec-websocket-key:"))
    digest = base64.b64encode(hashlib.sha1(key.encode() + GUID).digest()).decode()
    writer.write(
        f"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {digest}\r\n\r\n".encode()
    )


@asynccontextmanager
async def scripted(script: Script) -> AsyncIterator[str]:
    """A server on an ephemeral port running ``script`` per connection; its ws:// URL. All closed after."""
    tasks: set[asyncio.Task[None]] = set()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        tasks.add(task)
        try:
            await script(reader, writer)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    try:
        yield f"ws://127.0.0.1:{server.sockets[0].getsockname()[1]}/ws?since=0"
    finally:
        server.close()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await server.wait_closed()


async def opened(url: str) -> WsWire:
    async with asyncio.timeout(5):
        return await WsWire.open(url, max_size=64 * 1024, close_timeout=1.0)


async def test_a_fragmented_message_arrives_whole_and_a_ping_is_answered_with_its_data() -> None:
    pongs: asyncio.Queue[tuple[int, bytes]] = asyncio.Queue(maxsize=4)

    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await accept(reader, writer)
        writer.write(frame(TEXT, b'{"seq": ', fin=False) + frame(PING, b"are you there") + frame(CONT, b"1}"))
        writer.write(frame(BINARY, b"\x00\x01"))
        await pongs.put(await read_frame(reader))
        await reader.read()  # until the client closes

    async with scripted(script) as url:
        wire = await opened(url)
        assert await wire.recv() == '{"seq": 1}'
        assert await wire.recv() == b"\x00\x01"
        assert await asyncio.wait_for(pongs.get(), 5) == (PONG, b"are you there")
        await wire.close()


async def test_the_servers_close_says_its_code_and_reason_and_the_close_is_answered() -> None:
    answered: asyncio.Future[tuple[int, bytes]] = asyncio.get_running_loop().create_future()

    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await accept(reader, writer)
        writer.write(frame(TEXT, b"last") + frame(CLOSE, struct.pack("!H", 1001) + b"going away"))
        answered.set_result(await read_frame(reader))

    async with scripted(script) as url:
        wire = await opened(url)
        assert await wire.recv() == "last"  # what came before the close is still delivered
        with pytest.raises(ConnectionClosed) as closed:
            await wire.recv()
        assert closed_reason(closed.value) == "server closed (1001: going away)"
        assert await asyncio.wait_for(answered, 5) == (CLOSE, struct.pack("!H", 1001) + b"going away")
        await wire.close()


async def refuse_503(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """A server that answers the upgrade with 503."""
    await reader.readuntil(b"\r\n\r\n")
    writer.write(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n")
    await reader.read()


async def test_a_refused_handshake_raises_its_http_status() -> None:
    async with scripted(refuse_503) as url:
        with pytest.raises(InvalidStatus) as refused:
            await opened(url)
        assert refused.value.response.status_code == 503


async def test_a_connection_cut_during_the_handshake_is_an_invalid_handshake_not_a_hang() -> None:
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")  # then close without a word

    async with scripted(script) as url:
        with pytest.raises(InvalidMessage):
            await opened(url)


async def test_a_text_message_that_is_not_utf8_fails_the_connection_with_1007() -> None:
    closes: asyncio.Future[tuple[int, bytes]] = asyncio.get_running_loop().create_future()

    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await accept(reader, writer)
        writer.write(frame(TEXT, b"fine") + frame(TEXT, b"\xff\xfe") + frame(TEXT, b"after the bad one"))
        closes.set_result(await read_frame(reader))

    async with scripted(script) as url:
        wire = await opened(url)
        assert await wire.recv() == "fine"
        with pytest.raises(ProtocolError, match="not UTF-8"):  # and nothing read after it
            await wire.recv()
        opcode, payload = await asyncio.wait_for(closes, 5)
        assert (opcode, struct.unpack("!H", payload[:2])[0]) == (CLOSE, 1007)
        wire.abort()


async def test_a_burst_beyond_the_queue_stops_reading_then_every_message_arrives_in_order() -> None:
    count = MAX_QUEUED * 3

    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await accept(reader, writer)
        writer.write(b"".join(frame(TEXT, f"{i:<1000}".encode()) for i in range(count)))  # ~3 MB
        await reader.read()

    async with scripted(script) as url:
        wire = await opened(url)
        await wait_until(lambda: wire.paused, what="the connection to stop reading")
        # Past the bound by at most one read's worth (uvloop reads up to 256 KiB: ~260 of these).
        assert len(wire.messages) <= MAX_QUEUED + 300
        got = [await wire.recv() for _ in range(count)]
        assert got == [f"{i:<1000}" for i in range(count)]
        assert not wire.paused
        await wire.close()


async def test_a_recv_cut_short_by_its_timeout_loses_no_message() -> None:
    go = asyncio.Event()

    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await accept(reader, writer)
        await go.wait()
        writer.write(frame(TEXT, b"after the timeout"))
        await reader.read()

    async with scripted(script) as url:
        wire = await opened(url)
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.05):
                await wire.recv()
        go.set()
        assert await asyncio.wait_for(wire.recv(), 5) == "after the timeout"
        await wire.close()


async def test_a_message_in_endless_empty_fragments_fails_the_connection_with_1009() -> None:
    closes: asyncio.Future[tuple[int, bytes]] = asyncio.get_running_loop().create_future()

    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await accept(reader, writer)
        writer.write(frame(TEXT, b"{", fin=False) + frame(CONT, b"", fin=False) * (MAX_FRAGMENTS + 10))
        closes.set_result(await read_frame(reader))

    async with scripted(script) as url:
        wire = await opened(url)
        with pytest.raises(ProtocolError, match="fragments"):
            await asyncio.wait_for(wire.recv(), 5)
        opcode, payload = await asyncio.wait_for(closes, 5)
        assert (opcode, struct.unpack("!H", payload[:2])[0]) == (CLOSE, 1009)
        wire.abort()


async def test_a_close_cut_short_by_cancellation_still_drops_the_connection() -> None:
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await accept(reader, writer)
        await asyncio.sleep(3600)  # a dead peer: never answers the close

    async with scripted(script) as url:
        wire = await opened(url)
        closing = asyncio.create_task(wire.close())
        await asyncio.sleep(0.05)
        closing.cancel()
        with pytest.raises(asyncio.CancelledError):
            await closing
        await asyncio.wait_for(wire.ended, 5)  # the TCP connection is gone, not left open


async def test_a_close_while_reading_is_paused_still_reads_the_servers_close() -> None:
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await accept(reader, writer)
        writer.write(b"".join(frame(TEXT, f"{i:<1000}".encode()) for i in range(MAX_QUEUED * 3)))
        while (await read_frame(reader))[0] != CLOSE:
            pass
        writer.write(frame(CLOSE, struct.pack("!H", 1000)))
        await writer.drain()

    async with scripted(script) as url:
        wire = await opened(url)
        await wait_until(lambda: wire.paused, what="the connection to stop reading")
        await wire.close()
        assert wire.protocol.close_rcvd is not None and wire.protocol.close_rcvd.code == 1000


async def test_a_refused_handshake_leaves_no_connection_alive_in_a_cycle() -> None:
    async with scripted(refuse_503) as url:
        gc.collect()
        gc.disable()  # what outlives an attempt without the collector is what a crowd's wave piles up
        try:
            for _ in range(5):
                with pytest.raises(InvalidStatus):
                    await opened(url)
            # Each transport lets go of its wire once it has closed (a loop turn after the abort).
            await wait_until(lambda: not any(isinstance(o, WsWire) for o in gc.get_objects()), 2.0, "no wire left")
        finally:
            gc.enable()



async def test_a_ws_client_gives_up_a_handshake_never_answered_after_its_open_timeout() -> None:
    dropped = asyncio.Event()

    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")  # the upgrade request, never answered
        await reader.read()  # until the client gives up
        dropped.set()

    async with scripted(script) as url:
        client = WebSocketClient(url.replace("ws://", "http://").partition("/ws")[0], open_timeout=0.2)
        attempt = asyncio.create_task(client.attempt())
        done, _ = await asyncio.wait({attempt}, timeout=5)  # the test's own bound, far past the client's
        if not done:
            attempt.cancel()
            await asyncio.gather(attempt, return_exceptions=True)
        assert done and isinstance(attempt.exception(), TimeoutError)
        async with asyncio.timeout(5):
            await dropped.wait()  # the connection was dropped, not left open
