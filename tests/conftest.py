"""Shared fixtures: a real server on 127.0.0.1 with an ephemeral port, always cleaned up."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import pytest

from servers.runner import Server, ServerConfig


@pytest.fixture
async def server() -> AsyncIterator[Server]:
    """A started server, publishing nothing until the test sets a rate."""
    srv = Server(ServerConfig(rate=0))
    await srv.start()
    try:
        yield srv
    finally:
        await srv.stop()


async def wait_until(predicate: Callable[[], bool], timeout: float = 10.0, what: str = "condition") -> None:
    """Wait for ``predicate`` to hold, polling the loop; fail the test with ``what`` on timeout."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")
        await asyncio.sleep(0.01)


def fast_client_options() -> dict[str, dict[str, object]]:
    """Client options with short retry timers, so recovery tests take well under a second."""
    from rtplay.retry import ExponentialBackoff, FixedDelay

    return {
        "poll": {"interval": 0.1},
        "longpoll": {"retry": FixedDelay(0.2), "hold": 2.0},
        "ws": {"retry": ExponentialBackoff(initial=0.1, maximum=0.5), "ping_interval": 0.5, "ping_timeout": 0.5},
    }


def fast_server_config(**kw: object) -> ServerConfig:
    from servers.http import HttpConfig

    return ServerConfig(rate=0, http=HttpConfig(sse_retry_ms=100, ws_heartbeat_s=2.0), **kw)  # type: ignore[arg-type]
