"""The control API module on its own: :class:`ControlListener` on 127.0.0.1 driving a
:class:`ControlTarget` (here a small one over the real fault state and event bus), so every
answer, range check and the event stream's start and end are seen exactly."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from rtplay.protocol import control_api
from rtplay.protocol.control_events import CountersReset
from rtplay.protocol.faults import ALL, Fault, Kind
from rtplay.protocol.options import MAX_RATE
from servers.control import LOAD_MAX_S, ControlListener
from servers.core.events import EventBus
from servers.core.faults import FaultState
from servers.core.guard import ControlGuard
from servers.http.limits import ConnectionCap


class Target:
    """What the API drives, over the server's own fault state and event bus; the clock is
    set by the test."""

    def __init__(self) -> None:
        self.events = EventBus()
        self.faults = FaultState()
        self.clock = 50.0
        self.rate = 0.0
        self.published = 0
        self.replay_from = 1
        self.dropped: list[str | None] = []
        self.load_asked: list[float] = []

    def now(self) -> float:
        return self.clock

    def status(self, load_s: float = 10.0) -> dict[str, Any]:
        self.load_asked.append(load_s)
        return {"published": self.published, "rate": self.rate}

    def active_faults(self) -> list[Fault]:
        return self.faults.active(self.clock)

    def add_fault(
        self, kind: Kind, scope: str = ALL, value: float | None = None, *, jitter: float = 0.0, duration: float | None = None
    ) -> Fault:
        return self.faults.add(kind, scope, value, now=self.clock, jitter=jitter, duration=duration)

    def clear_faults(self, fault_id: int | None = None) -> list[Fault]:
        return self.faults.clear(fault_id)

    def set_rate(self, rate: float) -> None:
        self.rate = rate

    def drop(self, transport: str | None = None) -> int:
        self.dropped.append(transport)
        return 3

    def reset_counters(self) -> int:
        self.events.publish(CountersReset())
        return self.events.followers


@pytest.fixture
async def api() -> AsyncIterator[tuple[Target, httpx.AsyncClient, ControlListener]]:
    target = Target()
    listener = ControlListener(
        target, ControlGuard("secret", require_token=False).middleware, "127.0.0.1", 0, ConnectionCap(64), keepalive_s=10.0
    )
    await listener.start()
    try:
        async with httpx.AsyncClient(base_url=listener.url, trust_env=False, timeout=10) as http:
            yield target, http, listener
    finally:
        await listener.stop()


Api = tuple[Target, httpx.AsyncClient, ControlListener]


async def test_it_listens_on_the_port_it_was_given_and_describes_itself(api: Api) -> None:
    _, http, listener = api
    assert listener.port != 0 and listener.url == f"http://127.0.0.1:{listener.port}/control"
    answer = await http.get(listener.url)
    assert answer.status_code == 200 and answer.json() == json.loads(json.dumps(control_api.describe()))


async def test_a_fault_is_added_listed_and_cleared_by_id(api: Api) -> None:
    target, http, _ = api
    added = await http.post("/faults", json={"kind": "delay", "scope": "ws", "value": 200, "jitter": 50, "duration": 10})
    assert added.status_code == 201
    fault = added.json()["fault"]
    assert (fault["kind"], fault["scope"], fault["value"], fault["jitter"], fault["remaining_s"]) == ("delay", "ws", 200, 50, 10)
    target.clock += 4
    (listed,) = (await http.get("/faults")).json()["faults"]
    assert listed["id"] == fault["id"] and listed["remaining_s"] == 6 and listed["age_s"] == 4
    cleared = await http.delete(f"/faults/{fault['id']}")
    assert cleared.status_code == 200 and [f["id"] for f in cleared.json()["cleared"]] == [fault["id"]]
    assert target.active_faults() == []
    again = await http.delete(f"/faults/{fault['id']}")
    assert again.status_code == 404 and again.json() == {"error": f"no active fault {fault['id']}"}


async def test_delete_without_an_id_clears_every_fault(api: Api) -> None:
    target, http, _ = api
    for kind in ("stall", "error"):
        assert (await http.post("/faults", json={"kind": kind, **({"value": 503} if kind == "error" else {})})).status_code == 201
    answer = await http.delete("/faults")
    assert sorted(f["kind"] for f in answer.json()["cleared"]) == ["error", "stall"]
    assert target.active_faults() == []


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ({"kind": "earthquake"}, "kind must be one of"),
        ({}, "kind must be one of"),
        ({"kind": "delay", "value": True}, "value must be a finite number, got True"),
        ({"kind": "delay", "value": "200"}, "value must be a finite number"),
        ({"kind": "delay", "value": 200, "jitter": [1]}, "jitter must be a finite number"),
        ({"kind": "delay", "value": 200, "duration": "long"}, "duration must be a finite number"),
        ({"kind": "stall", "scope": 3}, "scope must be a string"),
        ({"kind": "stall", "scope": "carrier-pigeon"}, "carrier-pigeon"),
    ],
)
async def test_a_bad_fault_is_a_400_that_says_what_was_wrong_and_starts_nothing(
    api: Api, body: dict[str, Any], reason: str
) -> None:
    target, http, _ = api
    answer = await http.post("/faults", json=body)
    assert answer.status_code == 400 and reason in answer.json()["error"]
    assert target.active_faults() == []


@pytest.mark.parametrize("raw", ["abc", "-1", "1" * 19, "１"])
async def test_a_fault_id_that_is_not_a_small_integer_is_a_400(api: Api, raw: str) -> None:
    _, http, _ = api
    answer = await http.delete(f"/faults/{raw}")
    assert answer.status_code == 400 and "fault id must be an integer" in answer.json()["error"]


async def test_the_rate_is_set_within_its_range_and_read_back(api: Api) -> None:
    target, http, _ = api
    target.published, target.replay_from = 42, 3
    answer = await http.post("/rate", json={"rate": 25})
    assert answer.json() == {"rate": 25.0, "published": 42, "replay_from": 3}
    assert (await http.get("/rate")).json() == {"rate": 25.0}
    for bad in (-1, MAX_RATE + 1, True, "10", None):
        refused = await http.post("/rate", json={"rate": bad})
        assert refused.status_code == 400 and "rate must be a number" in refused.json()["error"]
    assert target.rate == 25.0


async def test_drop_names_a_transport_or_none(api: Api) -> None:
    target, http, _ = api
    assert (await http.post("/drop", json={"transport": "ws"})).json() == {"dropped": 3}
    assert (await http.post("/drop")).json() == {"dropped": 3}
    refused = await http.post("/drop", json={"transport": "pigeon"})
    assert refused.status_code == 400 and "transport must be one of" in refused.json()["error"]
    assert target.dropped == ["ws", None]


async def test_status_asks_for_the_load_window_given_within_its_bound(api: Api) -> None:
    target, http, _ = api
    assert (await http.get("/status")).status_code == 200
    assert (await http.get("/status", params={"load_s": "60"})).status_code == 200
    for bad in ("-1", str(LOAD_MAX_S + 1), "nan", "soon"):
        assert (await http.get("/status", params={"load_s": bad})).status_code == 400
    assert target.load_asked == [10.0, 60.0]


async def test_the_event_stream_opens_with_hello_carries_events_and_ends_with_bye(api: Api) -> None:
    target, http, listener = api
    async with http.stream("GET", "/events") as response:
        assert response.headers["content-type"] == "application/x-ndjson"
        lines = response.aiter_lines()
        hello = json.loads(await anext(lines))
        assert hello["type"] == "hello" and hello["status"] == {"published": 0, "rate": 0.0}
        assert target.events.followers == 1
        reset = await http.post("/reset")
        assert reset.json() == {"reset": True, "followers": 1}
        await listener.stop()  # a stopping listener ends every stream with its reason
        rest = [json.loads(line) async for line in lines]
    assert [e["type"] for e in rest] == ["counters_reset", "bye"]
    assert rest[-1]["reason"] == "server stopping"
    assert target.events.followers == 0


async def test_the_guard_stands_in_front_of_every_route(api: Api) -> None:
    target, http, listener = api
    foreign = await http.post("/rate", json={"rate": 5}, headers={"Origin": "http://evil.example"})
    assert foreign.status_code == 403
    not_json = await http.post("/rate", content=b'{"rate": 5}', headers={"Content-Type": "text/plain"})
    assert not_json.status_code == 415
    assert target.rate == 0.0
