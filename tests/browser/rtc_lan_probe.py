"""Run by test_rtc_default_flags inside a network namespace of its own that has a LAN-like
interface: the page's WebRTC client in Chromium with default flags against our server.

Prints one JSON line: the candidates Chromium offered, what the server learned, and what the
page's rtc client received.
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

from rtplay.engine.browser import BrowserDriver, loopback_only
from rtplay.protocol.ice import candidate_addresses
from servers.rtc.ice import Offer
from servers.runner import Server, ServerConfig


async def probe() -> dict[str, Any]:
    server = Server(ServerConfig(rate=50))
    offered: list[list[str]] = []
    accept = server.rtc.accept

    async def recording_accept(offer: Offer, since: int, source: str = "") -> str:
        offered.append(list(offer.removed) + candidate_addresses(offer.sdp))
        return await accept(offer, since, source)

    server.rtc.accept = recording_accept  # type: ignore[method-assign]
    await server.start()
    driver = BrowserDriver(server.http_url, server.quic_port)
    try:
        await driver.start()
        for _ in range(150):
            rtc = (await driver.page.evaluate("window.rtplay.snapshot()"))["clients"].get("rtc", {})
            if rtc.get("state") == "open" and rtc["channels"]["reliable"]["delivered"] >= 10:
                break
            await asyncio.sleep(0.1)
        learned = [
            (c.type, c.ip)
            for peer in server.rtc.peers
            if peer.pc.sctp is not None
            for c in peer.pc.sctp.transport.transport.getRemoteCandidates()
        ]
        return {"loopback_only": loopback_only(), "offered": offered, "learned": learned, "rtc": rtc}
    finally:
        await driver.stop()
        await server.rtc.close_all()
        await server.stop()


if __name__ == "__main__":
    json.dump(asyncio.run(probe()), sys.stdout)
    print()
