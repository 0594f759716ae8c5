"""A long-poll whose request the server holds (nothing published) is open, not connecting."""

from __future__ import annotations

from rtplay.clients.longpoll import HELD_OPEN_S, LongPollClient
from rtplay.model.events import State
from servers.runner import Server
from tests.conftest import running, wait_until


async def test_a_held_request_counts_as_open_while_the_hub_is_paused(server: Server) -> None:
    # rate 0 and a hold far longer than the test: no answer ever comes during it.
    client = LongPollClient(server.http_url, hold=60.0)
    async with running(client):
        await wait_until(lambda: client.state is State.OPEN, timeout=HELD_OPEN_S + 3, what="longpoll open")
        assert client.conn.connects == 1
        assert client.stats["main"].tracker.delivered == 0  # open on a held request, not on data
