"""A session attached to a running server (``--server URL``) starts where the server is and
leaves it as it found it: the rate it had, and only the faults others added."""

from __future__ import annotations

from rtplay.engine.session import Session, SessionConfig
from rtplay.protocol.faults import Kind
from servers.runner import Server
from tests.conftest import fast_server_config, wait_until

#: The shared server's rate before the session attaches (fast, to build a backlog quickly).
FOUND_RATE = 200.0


async def test_an_attached_session_counts_from_the_current_seq_and_leaves_rate_and_faults_as_found() -> None:
    server = Server(fast_server_config())
    await server.start()
    session = Session(SessionConfig(transports=["sse", "ws"], server_url=server.control_url))
    try:
        server.set_rate(FOUND_RATE)
        await wait_until(lambda: server.hub.last_seq >= 300, what="a backlog on the shared server")
        theirs = server.faults.add(Kind.ERROR, "longpoll", 503, now=server.ctx.clock())  # someone else's
        origin = server.hub.last_seq  # the session attaches after this message
        await session.start()
        ours = await session.faults.add(Kind.DELAY, "ws", 5)  # lasts until cleared
        await wait_until(lambda: all(c.cursor >= origin + 50 for c in session.clients.values()), what="arrivals")
        assert await session.settle(5.0)
        report = session.report()
        for name in ("sse", "ws"):
            entry, first = report["transports"][name], session.clients[name].stats["main"].tracker.first_seen
            assert first is not None and first > origin, f"{name} replayed the backlog from {first}"
            assert entry["delivered"] == report["published"] > 0
            assert entry["lost"] == 0
        assert report["published"] <= server.hub.last_seq - origin
    finally:
        await session.stop()
        status = server.status()
        await server.stop()
    assert status["rate"] == FOUND_RATE  # not left paused by the end-of-run settle
    assert [f["id"] for f in status["faults"]] == [theirs.id]  # ours cleared, theirs kept
    assert ours.id != theirs.id
