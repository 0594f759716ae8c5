"""The control API's own listener and its event stream, over real sockets on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest

from servers.core.events import MAX_QUEUED_EVENTS, TOO_FAR_BEHIND, EventBus
from servers.runner import Server


@asynccontextmanager
async def following(server: Server) -> AsyncIterator[asyncio.Queue[dict[str, Any]]]:
    """The server's events, as a follower on ``GET /control/events`` receives them."""
    queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()

    async def follow() -> None:
        async with httpx.AsyncClient(trust_env=False, timeout=None) as http:
            async with http.stream("GET", server.control_url + "/events") as response:
                assert response.headers["content-type"] == "application/x-ndjson"
                async for line in response.aiter_lines():
                    await queue.put(json.loads(line))

    task = asyncio.create_task(follow())
    try:
        yield queue
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def next_of(queue: asyncio.Queue[dict[str, Any]], kind: str, **match: object) -> dict[str, Any]:
    """The next event of type ``kind`` (with the given fields), skipping others."""
    async with asyncio.timeout(5):
        while True:
            event = await queue.get()
            if event["type"] == kind and all(event.get(k) == v for k, v in match.items()):
                return event


async def test_the_control_api_answers_during_an_outage_and_ends_it(server: Server) -> None:
    async with following(server) as events, httpx.AsyncClient(trust_env=False) as http:
        assert (await next_of(events, "hello"))["status"]["listening"] is True
        created = await http.post(server.control_url + "/faults", json={"kind": "outage", "value": 30})
        assert created.status_code == 201
        await next_of(events, "listeners", up=False)
        with pytest.raises(httpx.ConnectError):  # the transports' listener is down …
            await http.get(server.http_url + "/poll")
        status = (await http.get(server.control_url + "/status")).json()  # … the control API is not
        assert status["listening"] is False and [f["kind"] for f in status["faults"]] == ["outage"]
        assert (await http.delete(server.control_url + "/faults")).status_code == 200
        await next_of(events, "listeners", up=True)
        assert (await http.get(server.http_url + "/poll")).status_code == 200


async def test_the_event_stream_carries_faults_rate_crashes_and_figures(server: Server) -> None:
    async with following(server) as events, httpx.AsyncClient(trust_env=False) as http:
        hello = await next_of(events, "hello")
        assert hello["status"]["endpoints"]["http_url"] == server.http_url
        assert hello["status"]["endpoints"]["cert_sha256"] == server.cert.sha256_hex
        await http.post(server.control_url + "/rate", json={"rate": 200})
        assert (await next_of(events, "rate"))["rate"] == 200
        publisher = await next_of(events, "publisher")
        assert publisher["rate"] == 200 and publisher["published"] >= 0
        await http.post(server.control_url + "/faults", json={"kind": "delay", "scope": "ws", "value": 50})
        started = await next_of(events, "fault", what="started")
        assert started["fault"]["text"] == "delay 50ms on ws"
        await http.post(server.control_url + "/faults", json={"kind": "crash", "value": 0.2})
        ended = await next_of(events, "fault", what="ended")
        assert ended["fault"]["kind"] == "crash"  # it ends by itself after 0.2 s …
        crash = await next_of(events, "reset", cause="crash")  # … and the restart forgot the buffer
        assert crash["first"] == server.hub.first_available
        dropped = await http.post(server.control_url + "/drop", json={"transport": "ws"})
        assert dropped.json() == {"dropped": 0}


async def test_get_control_describes_the_api_and_bad_drops_are_400(server: Server) -> None:
    async with httpx.AsyncClient(trust_env=False) as http:
        described = (await http.get(server.control_url)).json()
        paths = {(r["method"], r["path"]) for r in described["endpoints"]}
        assert {("GET", "/control/events"), ("POST", "/control/drop"), ("POST", "/control/faults")} <= paths
        response = await http.post(server.control_url + "/drop", json={"transport": "carrier-pigeon"})
        assert response.status_code == 400 and "transport must be one of" in response.json()["error"]
        # The control API is not served on the transports' port any more.
        assert (await http.get(server.http_url + "/control/status")).status_code == 404


async def test_a_follower_that_stops_reading_is_cut_not_buffered_forever() -> None:
    bus = EventBus()
    feed = bus.subscribe()
    for i in range(MAX_QUEUED_EVENTS + 5):
        bus.publish({"type": "publisher", "published": i})
    assert feed.reason == TOO_FAR_BEHIND
    batch = await feed.next_batch()
    assert batch is not None and len(batch) == MAX_QUEUED_EVENTS  # what was queued still goes out
    assert await feed.next_batch() is None
