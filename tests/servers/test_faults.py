"""Fault state, throttle and the control API."""

from __future__ import annotations

import math
import random

import httpx
import pytest

from rtplay.protocol.faults import FaultError, Kind
from servers.core.faults import FaultState
from servers.core.throttle import BURST_BYTES, TokenBucket
from servers.runner import Server


def test_faults_apply_to_their_scope_only() -> None:
    state = FaultState()
    state.add(Kind.ERROR, "sse", 503, now=0)
    state.add(Kind.DELAY, "all", 200, now=0)
    assert state.error_for("sse") == 503 and state.error_for("ws") is None
    assert state.delay_for("ws") == pytest.approx(0.2)


def test_timed_faults_expire_and_are_reported_once() -> None:
    state = FaultState()
    fault = state.add(Kind.STALL, "ws", now=10.0, duration=2.0)
    assert state.stalled("ws")
    state.expire(11.9)
    assert state.stalled("ws")
    state.expire(12.0)
    assert not state.stalled("ws")
    assert state.drain_ended() == [fault] and state.drain_ended() == []


def test_outage_lasts_its_value() -> None:
    state = FaultState()
    fault = state.add(Kind.OUTAGE, "all", 3, now=1.0)
    assert fault.until == 4.0


def test_drop_is_one_shot_and_never_active() -> None:
    state = FaultState()
    state.add(Kind.DROP, "all", now=0)
    assert state.active() == []


@pytest.mark.parametrize(
    ("kind", "scope", "value", "message"),
    [
        (Kind.LOSS, "sse", 10, "acts on datagrams"),
        (Kind.ERROR, "ws", 299, "error code must be one of"),
        (Kind.DELAY, "ws", None, "needs a value"),
        (Kind.STALL, "ws", 5, "takes no value"),
        (Kind.DROP, "pigeon", None, "unknown scope"),
        (Kind.THROTTLE, "ws", 0, "must be > 0"),
    ],
)
def test_nonsense_faults_are_rejected_with_a_reason(kind: Kind, scope: str, value: float | None, message: str) -> None:
    with pytest.raises(FaultError, match=message):
        FaultState().add(kind, scope, value, now=0)


def test_delay_jitter_stays_within_bounds() -> None:
    state = FaultState(rng=random.Random(1))
    state.add(Kind.DELAY, "ws", 100, now=0, jitter=20)
    samples = [state.delay_for("ws") for _ in range(2000)]
    assert min(samples) >= 0.080 and max(samples) <= 0.120
    assert abs(sum(samples) / len(samples) - 0.100) < 0.002


@pytest.mark.parametrize("percent", [5, 20, 50])
def test_loss_rate_within_a_binomial_bound(percent: float) -> None:
    n = 5000
    state = FaultState(rng=random.Random(percent))
    state.add(Kind.LOSS, "wt", percent, now=0)
    dropped = sum(state.datagram_fate("wt")[0] for _ in range(n))
    p = percent / 100
    assert abs(dropped - n * p) <= 4 * math.sqrt(n * p * (1 - p))  # 4 sigma: fails ~1 in 16 000 seeds
    assert not any(state.datagram_fate("rtc")[0] for _ in range(100))  # scope


def test_token_bucket_limits_the_long_run_rate() -> None:
    bucket = TokenBucket(now=0.0)
    now, rate = 0.0, 5000.0
    for _ in range(100):
        now += bucket.delay_for(500, rate, now)
    # 50 000 bytes at 5 000 B/s: 10 s, less the initial burst
    assert now == pytest.approx((100 * 500 - BURST_BYTES) / rate, rel=0.01)


async def control(server: Server, method: str, path: str, **kw: object) -> httpx.Response:
    base = server.control_url.removesuffix("/control") if path.startswith("/control") else server.http_url
    async with httpx.AsyncClient(trust_env=False, base_url=base) as http:
        return await http.request(method, path, **kw)  # type: ignore[arg-type]


async def test_control_api_adds_lists_and_clears_faults(server: Server) -> None:
    created = await control(server, "POST", "/control/faults", json={"kind": "delay", "scope": "ws", "value": 250})
    assert created.status_code == 201
    fault_id = created.json()["fault"]["id"]
    listed = (await control(server, "GET", "/control/faults")).json()["faults"]
    assert [f["text"] for f in listed] == ["delay 250ms on ws"]
    assert server.faults.delay_for("ws") == 0.25
    assert (await control(server, "DELETE", f"/control/faults/{fault_id}")).status_code == 200
    assert server.faults.active() == []
    assert (await control(server, "DELETE", f"/control/faults/{fault_id}")).status_code == 404


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"kind": "meteor"}, "kind must be one of"),
        ({"kind": "loss", "scope": "sse", "value": 5}, "acts on datagrams"),
        ({"kind": "delay", "value": "lots"}, "value must be a finite number"),
        ([1, 2], "body must be a JSON object"),
    ],
)
async def test_control_api_rejects_bad_requests_with_400(server: Server, body: object, message: str) -> None:
    response = await control(server, "POST", "/control/faults", json=body)
    assert response.status_code == 400 and message in response.json()["error"]
    response = await control(
        server, "POST", "/control/faults", content=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400 and response.json()["error"].startswith("body is not JSON")


async def test_control_api_sets_the_rate(server: Server) -> None:
    assert (await control(server, "POST", "/control/rate", json={"rate": 250})).json()["rate"] == 250.0
    assert server.publisher.rate == 250
    assert (await control(server, "POST", "/control/rate", json={"rate": -1})).status_code == 400
    status = (await control(server, "GET", "/control/status")).json()
    assert status["rate"] == 250 and "connections" in status


async def test_error_fault_answers_new_requests_with_retry_after(server: Server) -> None:
    server.add_fault(Kind.ERROR, "poll", 503)
    response = await control(server, "GET", "/poll")
    assert response.status_code == 503 and response.headers["Retry-After"] == "2"
    assert (await control(server, "GET", "/longpoll?timeout=0")).status_code == 204  # other scope untouched


@pytest.mark.parametrize("kind", [Kind.OUTAGE, Kind.CRASH])
def test_an_outage_or_crash_has_no_transport_scope(kind: Kind) -> None:
    """Both take every listener down: "outage 5s on ws" described a fault that took poll,
    long-poll, SSE and WebTransport down too."""
    state = FaultState()
    with pytest.raises(FaultError, match="takes every listener of the server down: its scope is all, not ws"):
        state.add(kind, "ws", 5, now=0)
    assert state.add(kind, "all", 5, now=0).scope == "all"
