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
