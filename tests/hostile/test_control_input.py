"""Probe 1: one control request must never make the server unreachable or answer invalid JSON."""

from __future__ import annotations

import aiohttp
import pytest

from servers.runner import Server
from tests.conftest import wait_until
from tests.hostile.conftest import control, post_raw_json, strict_json

FAULTS = "/control/faults"


@pytest.mark.parametrize(
    "body",
    [
        '{"kind": "outage", "value": NaN}',
        '{"kind": "outage", "value": 5, "duration": NaN}',
        '{"kind": "outage", "value": 1e9}',
        '{"kind": "crash", "value": Infinity}',
        '{"kind": "error", "value": NaN}',
        '{"kind": "error", "value": Infinity}',
        '{"kind": "error", "value": 1e400}',
        '{"kind": "error", "value": 503.9}',
        '{"kind": "delay", "value": 100, "duration": -5}',
        '{"kind": "throttle", "value": -Infinity}',
        "[" * 30_000 + "]" * 30_000,
    ],
)
async def test_bad_numbers_and_deep_bodies_are_a_400_in_valid_json(server: Server, body: str) -> None:
    response = await post_raw_json(server, FAULTS, body)
    assert response.status_code == 400, response.text
    assert strict_json(response.text)["error"]
    assert server.faults.active() == [] and server.http_running


async def test_the_server_echoes_no_nan(server: Server) -> None:
    response = await control(server, "GET", "/control/status")
    strict_json(response.text)
    async with aiohttp.ClientSession() as http:
        async with http.ws_connect(server.http_url.replace("http", "ws") + "/ws") as ws:
            await ws.send_str('{"ping": NaN}')
            answer = await ws.receive()
    # Either the ping is refused (a close frame) or the answer is valid JSON: never NaN.
    if answer.type is aiohttp.WSMsgType.TEXT:
        strict_json(answer.data)
    else:
        assert answer.type is aiohttp.WSMsgType.CLOSE and ws.close_code == 1008


async def test_active_faults_are_capped_with_a_clear_error(server: Server) -> None:
    seen = 0
    for _ in range(200):
        response = await control(server, "POST", FAULTS, json={"kind": "delay", "value": 1, "scope": "poll"})
        if response.status_code != 201:
            break
        seen += 1
    assert response.status_code == 400 and "faults are active" in response.json()["error"]
    assert seen < 200 and len(server.faults.active()) == seen
    assert (await control(server, "DELETE", FAULTS)).status_code == 200  # still clearable


async def test_a_valid_outage_still_works_and_ends(server: Server) -> None:
    response = await control(server, "POST", FAULTS, json={"kind": "outage", "value": 0.2})
    assert response.status_code == 201 and strict_json(response.text)["fault"]["remaining_s"] <= 0.2
    await wait_until(lambda: not server.http_running, what="the outage")
    await wait_until(lambda: server.http_running, what="the listeners back")
