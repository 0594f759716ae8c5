"""Item 3: a cursor ahead of the server's head gets the reset, then the stream goes on.

A restarted server (or a bogus client) sees ``Last-Event-ID: 999999999999``: the reset says
where the stream really is (``first``: the oldest seq it still has, the next one the client
gets), and the connection then carries the buffer from there and every new envelope, on each
streaming transport, as a poll after the reset does. Messages are published by hand (rate 0), so nothing here is timed.
"""

from __future__ import annotations

import asyncio
import json

import aiohttp
import httpx
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription

from rtplay.compat.aioice import gather_on
from servers.core.cert import Certificate
from servers.quic.server import QuicListener
from servers.runner import Server
from tests.conftest import rtc_server, wait_until
from tests.servers.test_quic import raw_session

FUTURE = 999_999_999_999


def _publish(server: Server, count: int) -> None:
    for _ in range(count):
        server.broadcaster.publish()


async def test_sse_goes_on_after_the_reset(server: Server) -> None:
    _publish(server, 3)
    async with asyncio.timeout(10), aiohttp.ClientSession() as http, http.get(
        server.http_url + "/sse", headers={"Last-Event-ID": str(FUTURE)}
    ) as response:
        assert response.status == 200
        text = ""
        while "event: reset" not in text:
            text += (await response.content.readany()).decode()
        assert json.dumps({"since": FUTURE, "first": 1}) in text
        _publish(server, 2)
        while text.count("\nid: ") < 5:
            text += (await response.content.readany()).decode()
        ids = [int(line[4:]) for line in text.splitlines() if line.startswith("id: ")]
        assert ids == [1, 2, 3, 4, 5]


async def test_ws_goes_on_after_the_reset(server: Server) -> None:
    _publish(server, 3)
    url = server.http_url.replace("http", "ws") + f"/ws?since={FUTURE}"
    async with aiohttp.ClientSession() as http, http.ws_connect(url) as ws:
        assert json.loads((await ws.receive(timeout=5)).data) == {"reset": {"since": FUTURE, "first": 1}}
        _publish(server, 2)
        seqs = [json.loads((await ws.receive(timeout=5)).data)["seq"] for _ in range(5)]
        assert seqs == [1, 2, 3, 4, 5]


async def test_wt_goes_on_after_the_reset(server: Server, listener: QuicListener, cert: Certificate) -> None:
    _publish(server, 3)
    async with raw_session(listener.port, cert, f"/wt?since={FUTURE}") as (_, status, recorder):
        assert status == 200
        await wait_until(lambda: recorder.stream.count(b"\n") >= 2, 5, "reset and live lines")
        _publish(server, 2)
        await wait_until(lambda: recorder.stream.count(b"\n") >= 7, 5, "envelopes after the reset")
        lines = recorder.lines()
        assert lines[0] == {"reset": {"since": FUTURE, "first": 1}}
        assert [line["seq"] for line in lines[2:]] == [1, 2, 3, 4, 5]


async def test_rtc_goes_on_after_the_reset() -> None:
    async with rtc_server() as (srv, _):
        _publish(srv, 3)
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        try:
            reliable = pc.createDataChannel("reliable")
            pc.createDataChannel("unreliable", ordered=False, maxRetransmits=0)
            got: list[str] = []
            reliable.on("message", got.append)
            with gather_on("127.0.0.1"):
                await pc.setLocalDescription(await pc.createOffer())
            async with httpx.AsyncClient(trust_env=False) as http:
                response = await http.post(f"{srv.http_url}/rtc/offer?since={FUTURE}",
                                           json={"sdp": pc.localDescription.sdp, "type": "offer"})
            assert response.status_code == 200, response.text
            with gather_on("127.0.0.1"):
                await pc.setRemoteDescription(RTCSessionDescription(response.json()["sdp"], "answer"))
            await wait_until(lambda: len(got) >= 2, 10, "the reset and the greeting")
            _publish(srv, 2)
            await wait_until(lambda: len(got) >= 7, 10, "envelopes after the reset")
            assert json.loads(got[0]) == {"reset": {"since": FUTURE, "first": 1}}
            assert [json.loads(m)["seq"] for m in got[2:7]] == [1, 2, 3, 4, 5]
        finally:
            await pc.close()
