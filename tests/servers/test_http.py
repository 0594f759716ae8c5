"""The HTTP endpoints over real sockets on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json

import aiohttp
import httpx
import pytest

from rtplay.model.eventsource import EventStreamParser
from rtplay.protocol.faults import Kind
from servers.runner import Server, ServerConfig
from tests.conftest import wait_until


def publish(server: Server, n: int) -> None:
    for _ in range(n):
        server.broadcaster.publish()


async def get(server: Server, path: str, **kw: object) -> httpx.Response:
    async with httpx.AsyncClient(trust_env=False) as http:
        return await http.get(server.http_url + path, **kw)  # type: ignore[arg-type]


async def test_poll_returns_the_batch_after_the_cursor(server: Server) -> None:
    publish(server, 5)
    body = (await get(server, "/poll?since=3")).json()
    assert [m["seq"] for m in body["messages"]] == [4, 5]
    assert body["last"] == 5 and "reset" not in body


@pytest.mark.parametrize("path", ["/poll?since=-1", "/poll?since=abc", "/longpoll?since=x", "/ws?since=1.5"])
async def test_bad_cursor_is_a_400_with_a_reason(server: Server, path: str) -> None:
    response = await get(server, path)
    assert response.status_code == 400
    assert "since must be a non-negative integer" in response.json()["error"]
    publish(server, 1)
    assert (await get(server, "/poll")).json()["last"] == 1  # the server goes on


async def test_longpoll_holds_until_a_message_then_answers(server: Server) -> None:
    request = asyncio.create_task(get(server, "/longpoll?since=0&timeout=5"))
    await wait_until(lambda: server.ctx.registry.count("longpoll") == 1, what="the held request")
    assert not request.done()
    publish(server, 1)
    response = await request
    assert response.status_code == 200 and response.json()["messages"][0]["seq"] == 1


async def test_longpoll_times_out_with_204(server: Server) -> None:
    assert (await get(server, "/longpoll?since=0&timeout=0.05")).status_code == 204


async def test_longpoll_rejects_a_bad_timeout(server: Server) -> None:
    response = await get(server, "/longpoll?timeout=999")
    assert response.status_code == 400 and "timeout" in response.json()["error"]


async def test_poll_beyond_the_buffer_reports_a_reset() -> None:
    server = Server(ServerConfig(rate=0, replay_capacity=3))
    await server.start()
    try:
        publish(server, 10)
        body = (await get(server, "/poll?since=1")).json()
        assert body["reset"] == {"since": 1, "first": 8}
        assert [m["seq"] for m in body["messages"]] == [8, 9, 10]
    finally:
        await server.stop()


async def read_sse(
    server: Server, headers: dict[str, str], until_events: int, query: str = ""
) -> tuple[httpx.Response, list]:
    parser = EventStreamParser()
    events: list = []
    async with httpx.AsyncClient(trust_env=False, timeout=5) as http:
        async with http.stream("GET", server.http_url + "/sse" + query, headers=headers) as response:
            async for chunk in response.aiter_raw():
                events += parser.feed(chunk)
                if len(events) >= until_events:
                    break
    return response, events


async def test_sse_sends_retry_then_resumes_after_last_event_id(server: Server) -> None:
    publish(server, 5)
    response, events = await read_sse(server, {"Last-Event-ID": "2"}, until_events=3)
    assert response.headers["content-type"].startswith("text/event-stream")
    assert [e.last_event_id for e in events] == ["3", "4", "5"]
    assert json.loads(events[0].data)["seq"] == 3


async def test_sse_query_last_event_id_for_clients_without_headers(server: Server) -> None:
    publish(server, 3)
    _, events = await read_sse(server, {}, until_events=1, query="?lastEventId=2")
    assert events[0].last_event_id == "3"


async def test_sse_heartbeat_comment_on_an_idle_stream() -> None:
    server = Server(ServerConfig(rate=0))
    server.ctx.config.sse_heartbeat_s = 0.05
    await server.start()
    try:
        parser = EventStreamParser()
        async with httpx.AsyncClient(trust_env=False, timeout=5) as http:
            async with http.stream("GET", server.http_url + "/sse") as response:
                async for chunk in response.aiter_raw():
                    parser.feed(chunk)
                    if parser.comments:
                        break
        assert parser.comments >= 1
    finally:
        await server.stop()


async def test_ws_streams_envelopes_and_answers_pings(server: Server) -> None:
    publish(server, 2)
    async with aiohttp.ClientSession() as http:
        async with http.ws_connect(server.http_url.replace("http", "ws") + "/ws?since=0") as ws:
            first = json.loads((await ws.receive()).data)
            second = json.loads((await ws.receive()).data)
            await ws.send_str(json.dumps({"ping": 12.5}))
            assert json.loads((await ws.receive()).data) == {"pong": 12.5}
    assert (first["seq"], second["seq"]) == (1, 2)


@pytest.mark.parametrize("ping", ['{"ping": true}', '{"ping": NaN}', '{"ping": "1"}', '{"ping": 1e999}'])
async def test_ws_ping_that_is_not_a_finite_number_is_refused(server: Server, ping: str) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.ws_connect(server.http_url.replace("http", "ws") + "/ws") as ws:
            await ws.send_str(ping)
            assert (await ws.receive()).type == aiohttp.WSMsgType.CLOSE and ws.close_code == 1008


async def test_ws_pong_echoes_an_integer_stamp_as_json(server: Server) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.ws_connect(server.http_url.replace("http", "ws") + "/ws") as ws:
            await ws.send_str('{"ping": 1764270000123}')
            assert json.loads((await ws.receive()).data) == {"pong": 1764270000123}


async def test_ws_bad_frame_closes_only_that_connection(server: Server) -> None:
    async with aiohttp.ClientSession() as http:
        url = server.http_url.replace("http", "ws") + "/ws"
        async with http.ws_connect(url) as good, http.ws_connect(url) as bad:
            await bad.send_str("not json")
            closing = await bad.receive()
            assert closing.type == aiohttp.WSMsgType.CLOSE and bad.close_code == 1008
            publish(server, 1)
            assert json.loads((await good.receive()).data)["seq"] == 1


async def test_slow_consumer_is_disconnected_with_a_reason() -> None:
    server = Server(ServerConfig(rate=0, queue_size=4))
    await server.start()
    try:
        async with aiohttp.ClientSession() as http:
            async with http.ws_connect(server.http_url.replace("http", "ws") + "/ws") as ws:
                await wait_until(lambda: server.broadcaster.subscriber_count == 1, what="the subscription")
                # An idle stream takes each envelope straight from the publisher; one held up
                # (here by a stall) queues them, and more than the queue holds cuts it.
                stall = server.ctx.faults.add(Kind.STALL, "ws", now=server.ctx.clock())
                publish(server, 10)
                server.ctx.faults.clear(stall.id)
                frames = []
                while (msg := await ws.receive()).type == aiohttp.WSMsgType.TEXT:
                    frames.append(msg.data)
                assert ws.close_code == 1013
                assert "too slow" in (msg.extra or "")
    finally:
        await server.stop()


async def test_drop_closes_every_live_connection_of_one_transport(server: Server) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.ws_connect(server.http_url.replace("http", "ws") + "/ws") as ws:
            await wait_until(lambda: server.ctx.registry.count("ws") == 1, what="the ws connection")
            assert server.drop("sse") == 0
            assert server.drop("ws") == 1
            msg = await ws.receive()
            assert msg.type in (aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR, aiohttp.WSMsgType.CLOSE)


async def test_the_browser_page_and_cors_for_pages_of_other_origins(server: Server) -> None:
    async with httpx.AsyncClient(trust_env=False) as http:
        page = await http.get(server.http_url + "/")
        assert page.status_code == 200 and '<script src="/static/page.js">' in page.text
        assert "new EventSource" in (await http.get(server.http_url + "/static/page.js")).text
        preflight = await http.options(
            server.http_url + "/poll",
            headers={"Origin": "http://example.test", "Access-Control-Request-Method": "GET"},
        )
        assert preflight.status_code == 204 and preflight.headers["Access-Control-Allow-Origin"] == "*"
        poll = await http.get(server.http_url + "/poll", headers={"Origin": "http://example.test"})
        assert poll.headers["Access-Control-Allow-Origin"] == "*"
