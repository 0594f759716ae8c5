"""A long-poll whose request the server holds (nothing published) is open, not connecting."""

from __future__ import annotations

from rtplay.clients.longpoll import HELD_OPEN_S, LongPollClient
from rtplay.model.events import Event, RequestResent, RetryScheduled, State
from servers.runner import Server
from tests.conftest import running, wait_until


async def test_a_held_request_counts_as_open_while_the_hub_is_paused(server: Server) -> None:
    # rate 0 and a hold far longer than the test: no answer ever comes during it.
    client = LongPollClient(server.http_url, hold=60.0)
    async with running(client):
        await wait_until(lambda: client.state is State.OPEN, timeout=HELD_OPEN_S + 3, what="longpoll open")
        assert client.conn.connects == 1
        assert client.stats["main"].tracker.delivered == 0  # open on a held request, not on data


async def test_a_drop_of_the_held_request_shows_as_a_resend(server: Server) -> None:
    """Issue 23 item 10: the HTTP client silently sends an idempotent request again when its
    reused keep-alive connection is reset before any answer (as Chromium does); the drop must
    still show."""
    events: list[Event] = []
    client = LongPollClient(server.http_url, events.append, hold=60.0)
    async with running(client):
        server.broadcaster.publish()  # one answer: the next request goes out on a reused connection
        await wait_until(lambda: client.cursor == 1, what="the first answer")
        await wait_until(lambda: server.drop("longpoll") == 1, what="the next request held, then dropped")
        await wait_until(lambda: client.resent == 1, timeout=5, what="the resend counted")
        assert client.report(published=0)["resent"] == 1
        assert [e for e in events if isinstance(e, RequestResent)], events
        # The HTTP client hid it: no error reached our client, so no reconnect of its own.
        assert client.conn.connects == 1 and client.state is State.OPEN


async def test_a_drop_of_a_new_connections_first_request_is_a_disconnect(server: Server) -> None:
    """Chromium resends only on a reused connection (HttpNetworkTransaction::
    ShouldResendRequest): a new connection closed unanswered reaches the client as an error."""
    events: list[Event] = []
    client = LongPollClient(server.http_url, events.append, hold=60.0, retry="fixed:0.05")
    async with running(client):
        await wait_until(lambda: server.drop("longpoll") == 1, what="the first request held, then dropped")
        await wait_until(lambda: any(isinstance(e, RetryScheduled) for e in events), what="the retry")
        assert client.resent == 0 and not [e for e in events if isinstance(e, RequestResent)]
