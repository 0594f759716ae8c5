"""Items 9 and 13: the memory a burst of connections used comes back once it has left.

Two things kept it: the server's registries of live connections kept the tables they grew to
(CPython's sets and dicts never shrink on removal), and pymalloc's arenas stayed pinned by the
few objects that outlive a burst, which only the server process's allocator choice cures.
"""

from __future__ import annotations

import asyncio
import gc
import os
import subprocess
import sys
import tracemalloc
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import pytest

from rtplay.engine.spawn import ServerProcess
from rtplay.protocol.options import ServerOptions
from rtplay.runtime.memory import ALLOCATOR_ENV, SERVER_ALLOCATOR
from servers.core.connections import ConnectionRegistry
from servers.core.hub import Hub
from servers.core.pubsub import Broadcaster
from servers.http.ws_heartbeat import HeartbeatWheel
from tests.conftest import wait_until

BURST = 5000
"""Connections in a burst: their registries' tables are hundreds of KiB."""

LEFT_BEHIND_BYTES = 24 * 1024
"""What a registry may still hold once the burst has gone and one connection remains: a
table sized for a few dozen entries, not for the burst (the old code kept 128-512 KiB)."""


@contextmanager
def traced() -> Iterator[Callable[[], int]]:
    """Bytes allocated since the block began and still held (after a full collection: a
    context manager's frames hold on to what they saw in a cycle), as a callable."""

    def held() -> int:
        gc.collect()
        return tracemalloc.get_traced_memory()[0] - baseline

    tracemalloc.start()
    try:
        baseline = tracemalloc.get_traced_memory()[0]
        yield held
    finally:
        tracemalloc.stop()


def test_the_connection_registry_lets_a_bursts_table_go_once_it_has_left() -> None:
    registry = ConnectionRegistry(clock=lambda: 0.0)  # one load bin: only the table can grow
    aborts = [lambda: None for _ in range(BURST + 1)]
    with traced() as held:
        with registry.track("sse", aborts[0]):
            with ExitStack() as burst:
                for abort in aborts[1:]:
                    burst.enter_context(registry.track("sse", abort))
                assert registry.count("sse") == BURST + 1
                assert held() > 10 * LEFT_BEHIND_BYTES
            del burst
            assert registry.count("sse") == 1
            assert held() < LEFT_BEHIND_BYTES


def test_the_broadcaster_lets_a_bursts_subscriber_table_go_once_it_has_left() -> None:
    broadcaster = Broadcaster(Hub(capacity=1))
    stay, _ = broadcaster.subscribe(0)
    with traced() as held:
        subs = [broadcaster.subscribe(0)[0] for _ in range(BURST)]
        for sub in subs:
            broadcaster.unsubscribe(sub)
        del subs, sub
        assert broadcaster.subscriber_count == 1
        assert held() < LEFT_BEHIND_BYTES
    envelope = broadcaster.publish(now_ms=1.0)
    assert stay.drain(10) == [envelope]  # the one that stayed is still served


def test_the_websocket_heartbeat_lets_a_bursts_peers_go_once_they_have_left() -> None:
    wheel = HeartbeatWheel(lambda: 0.0)  # no checks: only the table is under test
    stay = wheel.add(lambda: 0, lambda: None, lambda: None)
    with traced() as held:
        forgets = [wheel.add(lambda: 0, lambda: None, lambda: None) for _ in range(BURST)]
        for forget in forgets:
            forget()
        del forgets, forget
        assert len(wheel) == 1
        assert held() < LEFT_BEHIND_BYTES
    stay()
    assert len(wheel) == 0


def allocator_of(pid: int) -> str | None:
    """The ``PYTHONMALLOC`` the process ``pid`` was started with (None: pymalloc, the default)."""
    environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    for entry in environ:
        name, _, value = entry.decode(errors="replace").partition("=")
        if name == ALLOCATOR_ENV:
            return value
    return None


async def test_the_spawned_server_runs_on_the_allocator_that_gives_memory_back(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ALLOCATOR_ENV, raising=False)
    server = await ServerProcess.start(ServerOptions(rate=0))
    try:
        assert allocator_of(server.pid) == SERVER_ALLOCATOR == "malloc"
    finally:
        await server.stop()


async def test_rtplay_serve_runs_on_that_allocator_too() -> None:
    env = {k: v for k, v in os.environ.items() if k != ALLOCATOR_ENV}
    serve = subprocess.Popen(
        [sys.executable, "-m", "rtplay.cli.main", "serve", "--rate", "0"],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env,
    )
    try:
        # `rtplay serve` becomes `python -m servers` (the same process): wait for that.
        await wait_until(lambda: b"servers" in Path(f"/proc/{serve.pid}/cmdline").read_bytes(), 10, "the exec")
        assert allocator_of(serve.pid) == SERVER_ALLOCATOR
    finally:
        serve.terminate()
        await asyncio.to_thread(serve.wait, 10)
        assert serve.stdout is not None
        serve.stdout.close()
