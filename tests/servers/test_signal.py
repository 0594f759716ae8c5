"""WebRTC signaling (``POST /rtc/offer?since=N``) on its own: an offer reaches the peer
manager with its cursor, and every way it can go wrong gets its own answer and reason."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from rtplay.protocol.faults import Kind
from servers.core.context import ServerContext
from servers.core.hub import Hub
from servers.core.pubsub import Broadcaster
from servers.http.common import CTX, MAX_REQUEST_BYTES
from servers.rtc.ice import Offer
from servers.rtc.peer import TooManyPeers
from servers.rtc.signal import handle_offer

FINGERPRINT = ":".join(["AB"] * 32)
SDP = "\r\n".join([
    "v=0", "o=- 1 1 IN IP4 127.0.0.1", "s=-", "t=0 0", "a=group:BUNDLE 0",
    "m=application 9 UDP/DTLS/SCTP webrtc-datachannel", "c=IN IP4 0.0.0.0", "a=mid:0", "a=sctp-port:5000",
    "a=ice-ufrag:abcd", "a=ice-pwd:abcdefghijklmnopqrstuvwx", f"a=fingerprint:sha-256 {FINGERPRINT}",
    "a=setup:actpass", "",
])
OFFER = {"sdp": SDP, "type": "offer"}


class Manager:
    """The peer manager's side of signaling: answers each offer, or fails as told."""

    host = "127.0.0.1"

    def __init__(self) -> None:
        self.offers: list[tuple[Offer, int]] = []
        self.fail: BaseException | None = None

    async def accept(self, offer: Offer, since: int, source: str = "") -> str:
        if self.fail is not None:
            raise self.fail
        self.offers.append((offer, since))
        return "v=0\r\nanswer"


@pytest.fixture
async def signaling() -> AsyncIterator[tuple[TestClient[web.Request, web.Application], Manager, ServerContext]]:
    manager = Manager()
    ctx = ServerContext(Broadcaster(Hub()), clock=lambda: 10.0)
    app = web.Application(client_max_size=MAX_REQUEST_BYTES)
    app[CTX] = ctx

    async def offer(request: web.Request) -> web.Response:
        return await handle_offer(manager, request)  # type: ignore[arg-type]  # the manager's signaling side

    app.router.add_post("/rtc/offer", offer)
    async with TestClient(TestServer(app, host="127.0.0.1", port=0)) as client:
        yield client, manager, ctx


Signaling = tuple[TestClient[web.Request, web.Application], Manager, ServerContext]


async def test_an_offer_is_answered_and_reaches_the_manager_with_its_cursor(signaling: Signaling) -> None:
    client, manager, _ = signaling
    response = await client.post("/rtc/offer?since=41", json=OFFER)
    assert response.status == 200
    assert await response.json() == {"sdp": "v=0\r\nanswer", "type": "answer"}
    ((offer, since),) = manager.offers
    assert since == 41 and offer.sdp.startswith("v=0") and "a=ice-ufrag:abcd" in offer.sdp


async def error(response: Any) -> str:
    return str((await response.json())["error"])


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"{not json", "body is not JSON"),
        (json.dumps({"sdp": SDP, "type": "answer"}).encode(), 'type must be "offer"'),
        (json.dumps({"sdp": "hello", "type": "offer"}).encode(), 'starting with "v=0"'),
        (json.dumps({"sdp": SDP.replace("a=ice-pwd:abcdefghijklmnopqrstuvwx\r\n", ""), "type": "offer"}).encode(),
         "ICE credentials"),
    ],
)
async def test_an_offer_that_cannot_be_answered_is_a_400_with_the_reason(signaling: Signaling, body: bytes, reason: str) -> None:
    client, manager, _ = signaling
    response = await client.post("/rtc/offer", data=body, headers={"Content-Type": "application/json"})
    assert response.status == 400 and reason in await error(response)
    assert manager.offers == []


async def test_a_bad_cursor_is_a_400_before_the_offer_is_read(signaling: Signaling) -> None:
    client, manager, _ = signaling
    response = await client.post("/rtc/offer?since=-3", json=OFFER)
    assert response.status == 400 and "since must be a non-negative integer" in await error(response)
    assert manager.offers == []


async def test_an_offer_larger_than_the_bound_is_refused_unread(signaling: Signaling) -> None:
    client, manager, _ = signaling
    big = json.dumps({"sdp": SDP + "a=x:" + "y" * MAX_REQUEST_BYTES, "type": "offer"})
    response = await client.post("/rtc/offer", data=big, headers={"Content-Type": "application/json"})
    assert response.status == 400 and f"larger than {MAX_REQUEST_BYTES} bytes" in await error(response)

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: the app's own bound stops it
        for start in range(0, len(big), 8192):
            yield big[start : start + 8192].encode()

    chunked = await client.post("/rtc/offer", data=chunks(), headers={"Content-Type": "application/json"})
    assert chunked.status == 400 and "larger than" in await error(chunked)
    assert manager.offers == []


async def test_a_full_server_answers_503_with_retry_after(signaling: Signaling) -> None:
    client, manager, ctx = signaling
    manager.fail = TooManyPeers("64 peers already")
    response = await client.post("/rtc/offer", json=OFFER)
    assert response.status == 503 and await error(response) == "64 peers already"
    assert response.headers["Retry-After"] == str(ctx.config.error_retry_after_s)


async def test_our_own_failure_is_a_500_for_this_offer_only_and_logged(
    signaling: Signaling, caplog: pytest.LogCaptureFixture
) -> None:
    client, manager, _ = signaling
    manager.fail = OSError("no UDP socket")
    with caplog.at_level(logging.ERROR, logger="servers.rtc.signal"):
        response = await client.post("/rtc/offer", json=OFFER)
    assert response.status == 500 and await error(response) == "cannot create a peer: OSError"
    assert "answering an offer failed" in caplog.text
    manager.fail = None
    assert (await client.post("/rtc/offer", json=OFFER)).status == 200  # the next one is answered


@pytest.mark.parametrize("code", [503, 500, 204])
async def test_an_error_fault_answers_with_its_status_and_creates_no_peer(signaling: Signaling, code: int) -> None:
    client, manager, ctx = signaling
    ctx.faults.add(Kind.ERROR, "rtc", code, now=ctx.clock())
    response = await client.post("/rtc/offer", json=OFFER)
    assert response.status == code
    if code == 204:
        assert await response.read() == b""
    else:
        assert await error(response) == f"injected fault: error {code}"
    assert ("Retry-After" in response.headers) is (code == 503)
    assert manager.offers == []


async def test_an_error_fault_on_another_transport_does_not_touch_signaling(signaling: Signaling) -> None:
    client, manager, ctx = signaling
    ctx.faults.add(Kind.ERROR, "ws", 503, now=ctx.clock())
    assert (await client.post("/rtc/offer", json=OFFER)).status == 200


async def test_an_expired_error_fault_no_longer_answers(signaling: Signaling) -> None:
    client, manager, ctx = signaling
    ctx.faults.add(Kind.ERROR, "rtc", 503, now=0.0, duration=5)  # ended at 5 s; the clock says 10
    assert (await client.post("/rtc/offer", json=OFFER)).status == 200
