"""OS errors in human words, the same on every transport."""

from __future__ import annotations

import errno
import socket

import pytest
import websockets

from rtplay.model.oserrors import describe_error, describe_os_error


def test_known_errnos_read_as_words() -> None:
    refused = ConnectionRefusedError(errno.ECONNREFUSED, "Connect call failed ('127.0.0.1', 9)")
    assert describe_error(refused) == "connection refused"
    assert describe_os_error(OSError(errno.ECONNRESET, "reset")) == "connection reset"


def test_wrapped_and_grouped_errors_are_found() -> None:
    inner = ConnectionRefusedError(errno.ECONNREFUSED, "refused")
    multi = OSError("Multiple exceptions: [Errno 111] Connect call failed ('::1', 9), [Errno 111] ...")
    multi.__cause__ = inner
    assert describe_error(multi) == "connection refused"
    assert describe_error(ExceptionGroup("both", [ValueError("x"), inner])) == "connection refused"


def test_unknown_errors_keep_their_own_message() -> None:
    assert describe_os_error(ValueError("bad")) is None
    assert describe_error(ValueError("bad")) == "bad"
    assert describe_error(TimeoutError()) == "TimeoutError"


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def test_a_refused_websocket_connect_reads_connection_refused() -> None:
    port = _closed_port()
    with pytest.raises(OSError) as info:
        async with websockets.connect(f"ws://127.0.0.1:{port}/ws", open_timeout=2, proxy=None):
            pass
    assert "Errno" in str(info.value)  # what the pane showed before
    assert describe_error(info.value) == "connection refused"


async def test_the_websocket_client_reports_a_refused_connect_in_words() -> None:
    from rtplay.clients.ws import WebSocketClient
    from rtplay.model.events import Disconnected, Event
    from rtplay.model.retry import ExponentialBackoff
    from tests.conftest import running, wait_until

    events: list[Event] = []
    client = WebSocketClient(
        f"http://127.0.0.1:{_closed_port()}", events.append, retry=ExponentialBackoff(initial=5.0, maximum=5.0)
    )
    async with running(client):
        await wait_until(lambda: any(isinstance(e, Disconnected) for e in events), what="a refused connect")
    reasons = [e.reason for e in events if isinstance(e, Disconnected)]
    assert reasons[0] == "connection refused"
