"""Resetting every counter mid-session: the figures start again, nothing is called lost."""

from __future__ import annotations

import httpx

from rtplay.clients.base import MAIN
from rtplay.engine.session import SessionConfig
from rtplay.protocol.faults import Kind
from tests.conftest import LocalSession, fast_client_options, wait_until


async def test_post_control_reset_zeroes_every_figure_and_loses_nothing() -> None:
    config = SessionConfig(transports=["ws", "wt"], client_options=fast_client_options())
    async with LocalSession(config) as session:
        await session.set_rate(100)
        ws = session.clients["ws"]
        await wait_until(lambda: ws.stats[MAIN].tracker.delivered >= 30, 5, "30 messages")
        await session.faults.add(Kind.DROP, "ws")
        await wait_until(lambda: ws.conn.reconnects >= 1, 5, "a reconnect")
        async with httpx.AsyncClient(trust_env=False) as http:
            response = await http.post(f"{session.control_url}/reset", json={})
        assert response.status_code == 200 and response.json() == {"reset": True, "followers": 1}
        await wait_until(lambda: ws.conn.reconnects == 0, 5, "the reset to reach the session")
        entry = session.report()["transports"]["ws"]
        assert entry["delivered"] < 10 and entry["reconnects"] == 0 and entry["connects"] == 1
        assert session.report()["faults"] == []
        cursor = ws.cursor
        await wait_until(lambda: ws.stats[MAIN].tracker.delivered >= 20, 5, "20 more")
        assert await session.settle(3)
        report = session.report()
    entry = report["transports"]["ws"]
    assert (entry["lost"], entry["pending"], entry["duplicates"]) == (0, 0, 0)
    assert entry["delivered"] >= report["published"] - cursor
    assert entry["latency_ms"]["p50"] is not None and entry["recent_latency_ms"]["p50"] is not None
