"""Shared fixtures: a real server on 127.0.0.1 with an ephemeral port, always cleaned up."""

from __future__ import annotations

import asyncio
import math
import os
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import pytest
from hypothesis import HealthCheck, settings

from rtplay.clients.base import Client
from rtplay.engine.session import Session, SessionConfig
from rtplay.protocol.options import ServerOptions
from rtplay.runtime import eventloop
from servers.core.cert import Certificate, generate_certificate
from servers.core.faults import FaultState
from servers.quic.server import QuicListener
from servers.rtc.peer import MAX_PEERS, RtcManager
from servers.runner import Server, ServerConfig

C = TypeVar("C", bound=Client)

# Hypothesis: the suite runs a modest number of examples per property so it stays fast on
# two shared cores, with no per-example deadline and no too-slow health check (a busy machine
# must not fail a property for taking its time); HYPOTHESIS_PROFILE=fuzz runs the parsers'
# fuzz targets at length.
settings.register_profile("suite", max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("fuzz", max_examples=10_000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "suite"))

#: Test modules of the core transports: they run on both event loops in every run, so CI
#: covers uvloop (the product's default) and asyncio (its fallback) alike.
BOTH_LOOPS = frozenset({"test_http.py", "test_quic.py", "test_rtc.py", "test_health.py"})


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--loop", choices=(*eventloop.LOOPS, "both"), default=None,
        help=f"event loop for async tests (default: ${eventloop.LOOP_ENV}, else uvloop); both = each test twice",
    )


def pytest_asyncio_loop_factories(config: pytest.Config, item: pytest.Item) -> dict[str, Callable[[], asyncio.AbstractEventLoop]]:
    """pytest-asyncio's hook: which loop(s) each async test runs on."""
    name = config.getoption("--loop") or eventloop.loop_name()
    names = eventloop.LOOPS if name == "both" or item.path.name in BOTH_LOOPS else (name,)
    return {n: eventloop.loop_factory(n) for n in names}


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "long: a test that runs for tens of seconds; the suite starts it first")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The long tests first (a stable sort: the rest keep their order). xdist's worksteal gives
    each worker a contiguous half of this order and lets an idle worker take the *end* of the
    other's queue: a long test at the start is never what one worker is left running alone."""
    items.sort(key=lambda item: item.get_closest_marker("long") is None)


@pytest.fixture
async def server() -> AsyncIterator[Server]:
    """A started server, publishing nothing until the test sets a rate."""
    srv = Server(ServerConfig(rate=0))
    await srv.start()
    try:
        yield srv
    finally:
        await srv.stop()


@pytest.fixture(scope="session")
def cert() -> Certificate:
    """One certificate for the QUIC tests (generating one costs a few ms)."""
    return generate_certificate()


@pytest.fixture
async def listener(server: Server, cert: Certificate) -> AsyncIterator[QuicListener]:
    """A QUIC listener of ``server`` with the ``cert`` fixture's certificate, on its own port."""
    quic = QuicListener(server.ctx, server.config.host, 0, cert)
    await quic.start()
    try:
        yield quic
    finally:
        await quic.stop()


@asynccontextmanager
async def rtc_server(
    max_peers: int = MAX_PEERS, faults: FaultState | None = None
) -> AsyncIterator[tuple[Server, RtcManager]]:
    """A started server (with /rtc/offer) and its peer manager; every peer closed afterwards."""
    srv = Server(ServerConfig(rate=0), faults)
    srv.rtc.max_peers = max_peers
    await srv.start()
    try:
        yield srv, srv.rtc
    finally:
        await srv.rtc.close_all()
        await srv.stop()


@asynccontextmanager
async def in_background(work: Coroutine[Any, Any, object]) -> AsyncIterator[asyncio.Task[object]]:
    """Run ``work`` as a task until the block ends, then cancel it and wait for its end."""
    task = asyncio.create_task(work)
    try:
        yield task
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


@asynccontextmanager
async def running(client: C) -> AsyncIterator[C]:
    """Run ``client`` until the block ends, then cancel it (its connection closes)."""
    async with in_background(client.run()):
        yield client


async def wait_until(predicate: Callable[[], bool], timeout: float = 10.0, what: str = "condition") -> None:
    """Wait for ``predicate`` to hold, polling the loop; fail the test with ``what`` on timeout."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")
        await asyncio.sleep(0.01)


def loop_lag_s(session: Session) -> float:
    """The worst lateness of ``session``'s event loops so far in this run, in seconds (the
    client's and the server's loop monitors, the report's ``health``). Every timer, hold and
    read fired up to this late, so a test's bound on "how soon" adds it: measured in the same
    run, never assumed quiet."""
    health = session.health()
    worst = [(health.get(side) or {}).get("max") or 0.0 for side in ("client_loop_lag_ms", "server_loop_lag_ms")]
    return max(worst) / 1000


class Stalls:
    """When this process's event loop could not run, moment by moment: a probe asks to wake
    every :attr:`PROBE_S` and records how late it woke (the loop was busy or the process not
    scheduled). :func:`loop_lag_s` is a run's single worst lateness, sampled every 50 ms: a
    bound on one message's or one wait's "how soon" that adds it undercounts a stall that
    began between two samples, and two stalls within one wait. :meth:`within` is the time the
    loop lost inside one wait, which that wait (on this loop) was delayed by at most."""

    PROBE_S = 0.005
    #: Lateness of every wake-up on a quiet loop (a timer's millisecond granularity and the
    #: wake-up itself): not a stall.
    GRAIN_S = 0.002

    def __init__(self) -> None:
        self.samples: list[tuple[float, float]] = []
        """(woke at, seconds late) on the monotonic clock, the sessions' clock."""
        self._due = math.inf

    async def probe(self) -> None:
        while True:
            self._due = due = time.monotonic() + self.PROBE_S
            await asyncio.sleep(self.PROBE_S)
            woke = time.monotonic()
            if woke - due > self.GRAIN_S:
                self.samples.append((woke, woke - due - self.GRAIN_S))

    def within(self, start: float, end: float) -> float:
        """Seconds the loop lost to stalls between ``start`` and ``end`` (monotonic). A stall
        that just ended counts too: the probe may not have woken yet to record it (a callback
        ahead of it in the same turn of the loop asks)."""
        now = time.monotonic()
        pending = [(now, now - self._due - self.GRAIN_S)] if now - self._due > self.GRAIN_S else []
        return sum(max(0.0, min(woke, end) - max(woke - late, start)) for woke, late in [*self.samples, *pending])


@asynccontextmanager
async def stalls() -> AsyncIterator[Stalls]:
    """A :class:`Stalls` probe of the running loop for the block's duration."""
    meter = Stalls()
    async with in_background(meter.probe()):
        yield meter


def fast_client_options() -> dict[str, dict[str, object]]:
    """Client options with short retry timers, so recovery tests take well under a second."""
    from rtplay.model.retry import ExponentialBackoff, FixedDelay

    return {
        "poll": {"interval": 0.1},
        "longpoll": {"retry": FixedDelay(0.2), "hold": 2.0},
        "ws": {"retry": ExponentialBackoff(initial=0.1, maximum=0.5), "ping_interval": 0.5, "ping_timeout": 0.5},
    }


#: Server knobs with short timers, for spawned and in-process servers alike.
FAST_HTTP = {"sse_retry_ms": 100, "ws_heartbeat_s": 2.0}


def fast_server_options(**kw: object) -> ServerOptions:
    """Options of a spawned server that publishes nothing until told, with short timers."""
    return ServerOptions(rate=0, http=dict(FAST_HTTP), **kw)  # type: ignore[arg-type]


def fast_server_config(**kw: object) -> ServerConfig:
    from servers.core.context import HttpConfig

    return ServerConfig(rate=0, http=HttpConfig(**FAST_HTTP), **kw)  # type: ignore[arg-type]


class LocalSession(Session):
    """A session whose server runs in the test's own loop (:attr:`local`), so a test can also
    reach into it; the session still drives it only through its control API and events."""

    def __init__(self, config: SessionConfig, server: ServerConfig | None = None) -> None:
        super().__init__(config)
        self.local = Server(server or fast_server_config())

    async def start(self) -> None:
        await self.local.start()
        self.config.server_url = self.local.control_url
        try:
            await super().start()
        except BaseException:
            await self.local.stop()
            raise

    async def stop(self) -> None:
        await super().stop()
        await self.local.stop()
