"""The long-poll's lean keep-alive request path against scripted HTTP servers on 127.0.0.1:
cursor, one reused connection, resend-once, clear errors, read timeout, cancellation."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import pytest

from rtplay.clients.http_common import CONNECT_TIMEOUT_S, describe_request_error
from rtplay.clients.keepalive import KeepAlive, ServerClosedError
from rtplay.clients.longpoll import LongPollClient
from rtplay.model.events import Disconnected, Event, RequestResent, State
from tests.conftest import running, wait_until

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter, "Seen"], Awaitable[None]]


@dataclass
class Seen:
    """What the scripted server saw: one entry per connection, its request targets."""

    connections: list[list[str]] = field(default_factory=list)


async def next_target(reader: asyncio.StreamReader, seen: Seen) -> str | None:
    """The next request's target (its head read whole), None when the client closed."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, ConnectionError):
        return None
    target = head.split(b" ")[1].decode()
    seen.connections[-1].append(target)
    return target


def answer(body: bytes, status: str = "200 OK", extra: str = "") -> bytes:
    return f"HTTP/1.1 {status}\r\nContent-Length: {len(body)}\r\n{extra}\r\n".encode() + body


def batch(*seqs: int) -> bytes:
    messages = [{"seq": s, "t": 1.0e12, "data": f"m{s}"} for s in seqs]
    return json.dumps({"messages": messages, "last": max(seqs)}).encode()


@asynccontextmanager
async def scripted(handler: Handler) -> AsyncIterator[tuple[str, Seen]]:
    """An HTTP server on an ephemeral port running ``handler`` per connection; all closed after."""
    seen, writers = Seen(), []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        seen.connections.append([])
        writers.append(writer)
        try:
            await handler(reader, writer, seen)
        finally:
            writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}", seen
    finally:
        for writer in writers:
            writer.close()
        server.close()
        await server.wait_closed()


async def counting_server(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, seen: Seen) -> None:
    """Answers each long-poll with the next message after the client's cursor."""
    while (target := await next_target(reader, seen)) is not None:
        since = int(target.split("since=")[1].split("&")[0])
        writer.write(answer(batch(since + 1)))


async def test_requests_carry_the_cursor_over_one_kept_alive_connection() -> None:
    async with scripted(counting_server) as (url, seen):
        client = LongPollClient(url, hold=7.0)
        async with running(client):
            await wait_until(lambda: client.stats["main"].tracker.delivered >= 5, what="five messages")
        assert len(seen.connections) == 1  # one connection for every request
        targets = seen.connections[0]
        assert targets[:5] == [f"/longpoll?since={n}&timeout=7.0" for n in range(5)]
        assert client.stats["main"].tracker.duplicates == 0 and client.conn.connects == 1


async def test_a_malformed_answer_ends_that_request_with_a_clear_reason() -> None:
    async def garbage(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, seen: Seen) -> None:
        if await next_target(reader, seen) is not None:
            writer.write(b"<html>not http</html>\r\n\r\n")
            await reader.read()  # the client drops the connection

    events: list[Event] = []
    async with scripted(garbage) as (url, seen):
        client = LongPollClient(url, events.append, retry="fixed:0.05")
        async with running(client):
            await wait_until(lambda: len(seen.connections) >= 2, what="a retry on a new connection")
    reasons = [e.reason for e in events if isinstance(e, Disconnected)]
    assert reasons and reasons[0].startswith("bad response: not an HTTP/1.1 status line"), reasons


async def test_a_bad_body_is_a_clear_error_and_loses_nothing_already_counted() -> None:
    async def then_bad(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, seen: Seen) -> None:
        await next_target(reader, seen)
        writer.write(answer(batch(1)))
        await next_target(reader, seen)
        writer.write(answer(b'{"messages": "no list"}'))
        await reader.read()

    events: list[Event] = []
    async with scripted(then_bad) as (url, _):
        client = LongPollClient(url, events.append, retry="fixed:60")
        async with running(client):
            await wait_until(lambda: client.state is State.RETRYING, what="the retry after the bad body")
    assert [e.reason for e in events if isinstance(e, Disconnected)] == ['bad response: expected {"messages": [...], "last": N}']
    assert client.cursor == 1 and client.stats["main"].tracker.delivered == 1


async def test_an_unanswered_close_of_a_reused_connection_is_sent_once_more_then_reported() -> None:
    async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, seen: Seen) -> None:
        if len(seen.connections) == 1 and await next_target(reader, seen) is not None:
            writer.write(answer(batch(1)))  # the first connection answers once: it is proven
        await next_target(reader, seen)  # then closes without a byte of an answer

    events: list[Event] = []
    async with scripted(hang_up) as (url, seen):
        client = LongPollClient(url, events.append, retry="fixed:60")
        async with running(client):
            await wait_until(lambda: client.state is State.RETRYING, what="the retry")
    # RFC 9112 §9.3.1: once, not more (the resend went out on a new connection)
    assert [len(c) for c in seen.connections] == [2, 1] and client.resent == 1
    assert len([e for e in events if isinstance(e, RequestResent)]) == 1
    assert [e.reason for e in events if isinstance(e, Disconnected)] == ["server closed the connection"]


async def test_a_new_connection_closed_unanswered_is_not_sent_again() -> None:
    async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, seen: Seen) -> None:
        await next_target(reader, seen)  # the server's answer to a new connection: none

    resends: list[None] = []
    async with scripted(hang_up) as (url, seen):
        http = KeepAlive(url, read_timeout=5.0, connect_timeout=CONNECT_TIMEOUT_S, on_resend=lambda: resends.append(None))
        with pytest.raises(ServerClosedError, match="server closed the connection"):
            await http.get("/longpoll?since=0")
        http.close()
    assert len(seen.connections) == 1 and resends == []  # as Chromium: only a reused connection is retried


async def test_a_close_in_the_middle_of_an_answer_is_not_sent_again() -> None:
    async def cut(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, seen: Seen) -> None:
        await next_target(reader, seen)
        writer.write(answer(batch(1))[:-5])

    async with scripted(cut) as (url, seen):
        http = KeepAlive(url, read_timeout=5.0, connect_timeout=CONNECT_TIMEOUT_S, on_resend=lambda: None)
        with pytest.raises(ServerClosedError) as caught:
            await http.get("/longpoll?since=0")
        http.close()
    assert len(seen.connections) == 1 and describe_request_error(caught.value) == (
        "connection closed after 68 of the response's 73 body bytes"
    )


async def test_a_silent_server_times_out_and_a_slow_answer_does_not() -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, seen: Seen) -> None:
        await next_target(reader, seen)
        await reader.read()

    async with scripted(silent) as (url, _):
        http = KeepAlive(url, read_timeout=0.2, connect_timeout=CONNECT_TIMEOUT_S, on_resend=lambda: None)
        with pytest.raises(TimeoutError, match="no answer for 0.2 s"):
            await http.get("/longpoll?since=0")
        http.close()

    async def trickle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, seen: Seen) -> None:
        await next_target(reader, seen)
        data = answer(batch(1))
        for i in range(0, len(data), 10):  # each piece well within the read timeout, all of them past it
            writer.write(data[i : i + 10])
            await asyncio.sleep(0.1)

    async with scripted(trickle) as (url, _):
        http = KeepAlive(url, read_timeout=0.6, connect_timeout=CONNECT_TIMEOUT_S, on_resend=lambda: None)
        assert (await http.get("/longpoll?since=0")).body == batch(1)
        http.close()


async def test_a_cancelled_request_leaves_no_answer_for_the_next() -> None:
    async def late(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, seen: Seen) -> None:
        first = await next_target(reader, seen)
        if first is not None and first.endswith("since=0"):
            await reader.read()  # the client gave up on it and closed
            writer.write(answer(batch(1)))
            return
        writer.write(answer(batch(2)))

    async with scripted(late) as (url, seen):
        http = KeepAlive(url, read_timeout=5.0, connect_timeout=CONNECT_TIMEOUT_S, on_resend=lambda: None)
        pending = asyncio.create_task(http.get("/longpoll?since=0"))
        await wait_until(lambda: len(seen.connections) == 1 and len(seen.connections[0]) == 1, what="the request")
        pending.cancel()
        with pytest.raises(asyncio.CancelledError):
            await pending
        assert (await http.get("/longpoll?since=1")).body == batch(2)
        http.close()
    assert len(seen.connections) == 2


async def test_a_refused_connection_reads_as_refused() -> None:
    async with scripted(counting_server) as (url, _):
        pass  # closed: nothing listens on its port any more
    http = KeepAlive(url, read_timeout=5.0, connect_timeout=CONNECT_TIMEOUT_S, on_resend=lambda: None)
    with pytest.raises(OSError) as caught:
        await http.get("/longpoll?since=0")
    assert describe_request_error(caught.value) == "connection refused"
