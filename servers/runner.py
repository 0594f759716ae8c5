"""Start, stop and restart every listener of the built-in server.

The hub, the broadcaster and the fault state live here and outlive the listeners, so an
outage (listeners down, then back) keeps the hub's state, and a crash forgets only the
replay buffer — exactly what a client of a real restarted server would see.
"""

from __future__ import annotations

import asyncio
import base64
import gc
import logging
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from aiohttp import web

from rtplay.compat import check_all
from rtplay.protocol.control_events import (
    BufferReset,
    CountersReset,
    FaultChanged,
    ListenersChanged,
    PublisherFigures,
    RateChanged,
)
from rtplay.protocol.faults import ALL, ONE_SHOT, TRANSPORTS, Fault, Kind
from rtplay.protocol.options import ServerOptions
from rtplay.runtime.health import LoopMonitor, SideHealth
from rtplay.runtime.loopback import is_loopback_host
from rtplay.runtime.memory import MemoryReturn, malloc_trim
from rtplay.runtime.process import resident_kb
from rtplay.runtime.serverlog import server_logger
from rtplay.runtime.token import new_token
from servers.control import ControlListener
from servers.core.cert import Certificate, generate_certificate
from servers.core.connections import ConnectionRegistry
from servers.core.context import HttpConfig, ServerContext
from servers.core.events import PUBLISHER_EVERY_S, EventBus
from servers.core.faults import FaultState
from servers.core.guard import ControlGuard
from servers.core.hub import DEFAULT_PAYLOAD_SIZE, DEFAULT_REPLAY_CAPACITY, Hub
from servers.core.load import probe_loop_lag
from servers.core.pubsub import DEFAULT_SUBSCRIBER_QUEUE, Broadcaster, Publisher
from servers.http import answers, browser_report, page
from servers.http.app import build_app
from servers.http.limits import REQUEST_BODY_TIMEOUT_S, ConnectionCap, default_cap
from servers.quic.server import QuicListener

if TYPE_CHECKING:  # aiortc takes ~0.3 s to import: not before the server is ready (see Server.rtc)
    from servers.rtc.peer import RtcManager

log = logging.getLogger(__name__)

#: How long a stopping HTTP listener waits for in-flight handlers. Short: everything that
#: is still open is aborted first, and an outage must start promptly.
HTTP_SHUTDOWN_TIMEOUT_S = 0.5

def cert_names(host: str) -> tuple[str, ...]:
    """What the certificate must name: loopback, plus the bind address when it is specific."""
    names = ("localhost", "127.0.0.1")
    return names if host in ("", "0.0.0.0", "::") or host in names else (*names, host)


#: The libraries only WebRTC needs. aiortc alone takes ~0.3 s to import, which the server's
#: ready line (and so every client's start) need not wait for: :meth:`Server.load_webrtc`
#: loads them in a thread afterwards, and the first offer waits for that.
WEBRTC_LIBRARIES = ("aiortc", "aioice")


def _import_webrtc() -> None:
    """Check the WebRTC libraries' internals and import the WebRTC side (in a thread)."""
    check_all(WEBRTC_LIBRARIES)
    import servers.rtc.signal  # noqa: F401  (imports servers.rtc.peer, aiortc, aioice)


AppHook = Callable[[web.Application], None]
"""Called with ``("started" | "ended", fault)``."""

#: How often timed faults are checked for their end. A cleared or expired fault must stop
#: acting within 100 ms; endpoints also expire faults themselves on every request.
FAULT_TICK_S = 0.05

#: The HTTP listener's transports whose live connections an outage aborts.
HTTP_TRANSPORTS = ("poll", "longpoll", "sse", "ws")

#: How long an outage lets the handlers of the connections it aborted end by themselves
#: before aiohttp shuts down what is left: 10,000 WebSocket handlers end in about a second
#: on a busy core; a handler that has not ended in 5 s is stuck, and aiohttp cancels it.
DROPPED_HANDLERS_S = 5.0

#: ... as long as they are still ending: when none has ended for this long, the rest are
#: waiting for something (an idle SSE stream for the next publish, at rate 0 for ever) and
#: aiohttp's shutdown ends them. Waiting the whole 5 s for those made every stop of a server
#: with an idle stream 5 s long.
DROPPED_PROGRESS_S = 0.1

#: Turns of the loop in a row without a dropped connection ending, as well as
#: :data:`DROPPED_PROGRESS_S`, before an outage stops waiting for the rest: a turn after an
#: outage can take longer than that time (5,000 WebSockets' ends, measured: their request tasks
#: all finished on the fourth turn, 0.19 s after the handlers), so time alone says nothing.
QUIET_TURNS = 8

#: How often the wait looks again once :data:`QUIET_TURNS` turns changed nothing (an idle
#: stream waits for the next publish; no need to spin the loop for it).
QUIET_POLL_S = 0.01

#: After an outage, how long to wait before trying again to bind a port someone else took
#: meanwhile. Short enough that the playground comes back soon after the port is free.
REBIND_RETRY_S = 1.0


@dataclass
class ServerConfig:
    host: str = "127.0.0.1"
    """Bind address of every listener. Loopback unless the user asks otherwise."""
    http_port: int = 0
    """TCP port of /poll /longpoll /sse /ws /rtc; 0 = any free port."""
    control_port: int = 0
    """TCP port of the control API, its own listener; 0 = any free port."""
    quic_port: int = 0
    """UDP port of the HTTP/3 (WebTransport) listener; 0 = any free port."""
    rate: float = 10.0
    """Messages published per second; 0 = paused."""
    replay_capacity: int = DEFAULT_REPLAY_CAPACITY
    payload_size: int = DEFAULT_PAYLOAD_SIZE
    queue_size: int = DEFAULT_SUBSCRIBER_QUEUE
    http: HttpConfig = field(default_factory=HttpConfig)
    max_connections: int | None = None
    """TCP connections over the HTTP and control listeners together; None = the descriptor
    limit less a reserve (see :mod:`servers.http.limits`)."""
    body_timeout_s: float = REQUEST_BODY_TIMEOUT_S
    """How long a request body may take after its head before a 408."""

    @classmethod
    def from_options(cls, options: ServerOptions) -> ServerConfig:
        """The configuration a spawned server was given on its command line."""
        return cls(
            host=options.host, http_port=options.http_port, quic_port=options.quic_port,
            control_port=options.control_port, rate=options.rate, http=HttpConfig(**options.http),  # type: ignore[arg-type]  # names and ranges checked by ServerOptions
        )


class Server:
    """The built-in multi-transport server."""

    def __init__(self, config: ServerConfig | None = None, faults: FaultState | None = None) -> None:
        self.config = config or ServerConfig()
        self.hub = Hub(self.config.replay_capacity, self.config.payload_size)
        self.broadcaster = Broadcaster(self.hub, self.config.queue_size)
        self.publisher = Publisher(self.broadcaster, self.config.rate)
        self.memory = MemoryReturn(trim=self._return_memory)
        """Gives the heap's freed pages back once a burst of connections has gone."""
        registry = ConnectionRegistry(closed=self.memory.released)
        self.ctx = ServerContext(self.broadcaster, faults or FaultState(), registry, config=self.config.http)
        self.http_port = self.config.http_port
        self.cert: Certificate = generate_certificate(names=cert_names(self.config.host))
        """Ephemeral ECDSA P-256, valid < 14 days: a browser can pin its SHA-256."""
        self.quic = QuicListener(self.ctx, self.config.host, self.config.quic_port, self.cert, memory=self.memory)
        self._rtc: RtcManager | None = None
        self._webrtc_loaded: asyncio.Future[None] | None = None
        self.guard = ControlGuard(new_token(), require_token=not is_loopback_host(self.config.host))
        """Who may drive /control: loopback callers, plus the token when bound beyond loopback."""
        self.answers = answers.AnswerBudget(done=self.memory.released)
        """Large /poll and /longpoll answers in flight (servers.http.answers)."""
        self.browser_reports = browser_report.BrowserReports()
        """What the browser page's clients reported (``/browser/report``)."""
        self._app_hooks: list[AppHook] = [
            self._rtc_routes,
            page.install(self.page_config),
            browser_report.install(self.browser_reports, lambda: self.hub.last_seq),
            answers.hook(self.answers),
        ]
        self.events = EventBus()
        """What ``GET /control/events`` followers are told."""
        self.connections = ConnectionCap(self.config.max_connections or default_cap(), self.config.body_timeout_s)
        """The connection cap and body deadline both TCP listeners share."""
        self.control = ControlListener(
            self, self.guard.middleware, self.config.host, self.config.control_port, self.connections,
            # The HTTP listener's header and idle deadlines (see start_http): a silent socket or a
            # slow request head here holds a descriptor like anywhere else.
            keepalive_s=min(self.config.http.header_timeout_s, self.config.http.idle_timeout_s),
        )
        self._http: web.AppRunner | None = None
        self.started_at = time.time()
        self._outages: set[int] = set()
        """Ids of outage/crash faults holding the listeners down."""
        self._background: set[asyncio.Task[None]] = set()
        self._ticker: asyncio.Task[None] | None = None
        self.monitor = LoopMonitor()
        """This process's event-loop lag (the same loop as the clients' while they share one)."""
        self._listener_lock = asyncio.Lock()
        """Serializes stopping and starting listeners (an outage cleared at once, say)."""

    def _return_memory(self) -> bool:
        """After a burst of connections ended: let go of what still refers to them, collect
        whatever cycles they left (a closed WebSocket's no longer: its handler lets go of the
        closing error's tracebacks, see ``servers.http.ws.forget_closing_error``), then trim
        the heap."""
        self.connections.prune()
        gc.collect()
        return malloc_trim()

    @property
    def rtc(self) -> RtcManager:
        """WebRTC publishing peers: they live apart from the HTTP listener (signaling only).

        Made on first use, which imports aiortc unless :meth:`load_webrtc` did already."""
        if self._rtc is None:
            from servers.rtc.peer import RtcManager

            self._rtc = RtcManager(self.ctx, host=self.config.host)
        return self._rtc

    async def load_webrtc(self) -> None:
        """Import the WebRTC side in a thread, once (:data:`WEBRTC_LIBRARIES`); every caller
        waits for the same import, so the event loop never imports aiortc at the same time
        (two threads importing one package see each other's half-made modules)."""
        if self._webrtc_loaded is None:
            self._webrtc_loaded = asyncio.ensure_future(asyncio.to_thread(_import_webrtc))
        await asyncio.shield(self._webrtc_loaded)

    def _rtc_routes(self, app: web.Application) -> None:
        app.router.add_post("/rtc/offer", self._rtc_offer)

    async def _rtc_offer(self, request: web.Request) -> web.StreamResponse:
        """``POST /rtc/offer``: :func:`servers.rtc.signal.handle_offer`, once WebRTC is loaded."""
        await self.load_webrtc()
        from servers.rtc.signal import handle_offer

        return await handle_offer(self.rtc, request)

    @property
    def faults(self) -> FaultState:
        return self.ctx.faults

    @property
    def http_url(self) -> str:
        host = f"[{self.config.host}]" if ":" in self.config.host else self.config.host
        return f"http://{host}:{self.http_port}"

    @property
    def quic_port(self) -> int:
        return self.quic.port

    @property
    def wt_url(self) -> str:
        return self.quic.url

    def page_config(self) -> dict[str, str | int]:
        """What the browser page needs: WebTransport's URL and pinned cert hash, the hub's newest
        seq (``last``: a page that opens is a new subscriber and starts after it), and the key its
        reports carry (handed to this server's own page only: see :mod:`servers.http.page`)."""
        return {"wt_url": self.wt_url, "cert_sha256": self.cert.sha256_hex, "last": self.hub.last_seq,
                "report_key": self.browser_reports.key}

    @property
    def control_url(self) -> str:
        return self.control.url

    @property
    def http_running(self) -> bool:
        return self._http is not None

    async def start(self, publish: bool = True) -> None:
        await self.control.start()
        try:
            await self.start_listeners()
        except BaseException:
            await self.stop()
            raise
        if publish:
            self.publisher.start()
        self._ticker = asyncio.create_task(self._tick(), name="rtplay-server-ticker")
        self.monitor.start()
        probe = asyncio.create_task(probe_loop_lag(self.ctx.registry.load, self.ctx.clock), name="rtplay-lag-probe")
        self._background.add(probe)
        probe.add_done_callback(self._background.discard)

    def status(self, load_s: float = 10.0) -> dict[str, Any]:
        """What ``GET /control/status`` says: figures, faults, where to connect, and the
        load series (accepts/s, concurrent connections, loop lag) of the last ``load_s`` s."""
        now = self.ctx.clock()
        host = self.config.host
        return {
            "published": self.hub.last_seq,
            "replay_from": self.hub.first_available,
            "rate": self.publisher.rate,
            "connections": {t: self.ctx.registry.count(t) for t in TRANSPORTS},
            "faults": [f.to_json(now) for f in self.faults.active(now)],
            "listening": self.http_running,
            "load": self.ctx.registry.load.series(since=now - load_s) | {"rss_kb": round(resident_kb())},
            "endpoints": {
                "http_url": self.http_url,
                "quic_host": "127.0.0.1" if host in ("", "0.0.0.0", "::") else host,
                "quic_port": self.quic_port,
                "wt_url": self.wt_url,
                "cert_sha256": self.cert.sha256_hex,
                "cert_der_b64": base64.b64encode(self.cert.der).decode(),
                "control_url": self.control_url,
            },
            "health": self.health().to_json(),
        }

    def health(self) -> SideHealth:
        """The server side's loop lag and publisher slip (``GET /control/status`` carries it)."""
        now = self.monitor.clock()
        lag, slip = self.monitor.meter, self.publisher.slip
        # The slip meter runs on loop.time(); compare like with like for "recently overloaded".
        loop_now = asyncio.get_running_loop().time()
        return SideHealth(
            lag.summary(),
            round(slip.max_ms, 2),
            lag.overloaded(now) or slip.overloaded(loop_now),
            max(lag.overloaded_s, slip.overloaded_s),  # the two overlap; count the longer
        )

    async def stop(self) -> None:
        await self.monitor.stop()
        for task in (self._ticker, *self._background):
            if task is not None:
                task.cancel()
        await asyncio.gather(*(t for t in (self._ticker, *self._background) if t), return_exceptions=True)
        self._ticker = None
        await self.publisher.stop()
        await self.stop_listeners()
        if self._rtc is not None:
            await self._rtc.close_all()
        await self.control.stop()
        self.memory.close()

    async def start_http(self) -> None:
        if self._http is not None:
            return
        app = build_app(self.ctx)
        for hook in self._app_hooks:
            hook(app)
        app.middlewares.insert(0, self.connections.middleware)  # outermost: busy from the head on
        http = self.config.http
        runner = web.AppRunner(
            app,
            shutdown_timeout=HTTP_SHUTDOWN_TIMEOUT_S,
            access_log=None,
            logger=server_logger(),
            # aiohttp arms one timer per connection, at open and after each response, and
            # closes the connection if no complete request head came by then: it enforces
            # both the header deadline (slowloris, silent sockets) and the idle keep-alive.
            keepalive_timeout=min(http.header_timeout_s, http.idle_timeout_s),
        )
        await runner.setup()
        site = self.connections.site(runner, self.config.host, self.http_port)
        try:
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self.http_port = runner.addresses[0][1]
        self._http = runner
        log.info("HTTP listening on %s", self.http_url)

    async def stop_http(self) -> None:
        """Take the HTTP listener down: live connections are aborted, new ones refused.

        Every live connection hears its end in one pass (see ``common.hang_up``) and the
        listener closes; then the aborted connections' handlers get up to
        :data:`DROPPED_HANDLERS_S`, while they are still ending, to end by themselves before
        aiohttp's own shutdown, which otherwise waits on each one still ending (a future and
        two timeouts per connection) and, past its 0.5 s, cancels
        them mid-finish: with 10,000 WebSockets that held the loop for seconds and logged
        thousands of ``InvalidStateError`` (a handler finishing after the wait for it had
        timed out)."""
        runner, self._http = self._http, None
        if runner is None:
            return
        for transport in HTTP_TRANSPORTS:
            self.ctx.registry.drop(transport)
        if runner.server is not None:
            self.connections.forget(runner.server)
        try:
            for site in list(runner.sites):
                await site.stop()  # refused from now on
            await self._let_dropped_handlers_end(runner.server)
        finally:
            await runner.cleanup()
        log.info("HTTP listener stopped")

    async def _let_dropped_handlers_end(self, server: web.Server | None) -> None:
        """Wait while the dropped connections are still ending (see :data:`DROPPED_PROGRESS_S`
        and :data:`QUIET_TURNS`), at most :data:`DROPPED_HANDLERS_S`: first our handlers, then
        aiohttp's request tasks around them. Each connection aiohttp still lists costs its
        shutdown a task and a timeout of its own (0.3 s of the core for 5,000 dropped
        WebSockets), for a task that ends a few turns of the loop later anyway; idle keep-alive
        connections are told to close first, so they end with the others."""
        if server is not None:
            server.pre_shutdown()  # what aiohttp's cleanup does first: idle connections close

        def left() -> int:
            return self._live_http() + (len(server.connections) if server is not None else 0)

        loop = asyncio.get_running_loop()
        deadline = loop.time() + DROPPED_HANDLERS_S
        was, changed_at, quiet_turns = left(), loop.time(), 0
        while was:
            if loop.time() >= deadline:
                log.warning("dropped connections still ending after %g s; shutting them down", DROPPED_HANDLERS_S)
                return
            if quiet_turns >= QUIET_TURNS and loop.time() - changed_at >= DROPPED_PROGRESS_S:
                return  # the rest wait for something else: aiohttp's shutdown ends them
            await asyncio.sleep(0 if quiet_turns < QUIET_TURNS else QUIET_POLL_S)
            now = left()
            if now != was:
                changed_at, quiet_turns = loop.time(), 0
            else:
                quiet_turns += 1
            was = now

    def _live_http(self) -> int:
        return sum(self.ctx.registry.count(transport) for transport in HTTP_TRANSPORTS)

    async def stop_listeners(self) -> None:
        """An outage: every listener down (connections refused); the hub keeps its state.

        QUIC does not wait for HTTP: its sessions are aborted at once, while the HTTP listener
        waits for its handlers to end (up to :data:`DROPPED_HANDLERS_S`, then aiohttp's own
        :data:`HTTP_SHUTDOWN_TIMEOUT_S`); WebTransport must not outlive every other transport.
        """
        async with self._listener_lock:
            # Together, each on its own: QUIC's sessions end at once while HTTP's handlers end.
            outcomes = await asyncio.gather(self.quic.stop(), self.stop_http(), return_exceptions=True)
            for outcome in outcomes:
                if isinstance(outcome, BaseException):
                    raise outcome
        self.events.publish(ListenersChanged(up=False))

    async def start_listeners(self, forget: bool = False) -> None:
        """Back from an outage; ``forget`` = it was a crash and the replay buffer is gone."""
        async with self._listener_lock:
            if forget:
                self.hub.forget()
                self.events.publish(BufferReset(cause="crash", first=self.hub.first_available))
            await self.start_http()
            await self.quic.start()
        self.events.publish(ListenersChanged(up=True))

    # --- faults ------------------------------------------------------------------------------

    def reset_counters(self) -> int:
        """Ask every follower (a session accounts on its side) to zero its counters."""
        self.events.publish(CountersReset())
        return self.events.followers

    def add_fault(
        self,
        kind: Kind,
        scope: str = ALL,
        value: float | None = None,
        *,
        jitter: float = 0.0,
        duration: float | None = None,
    ) -> Fault:
        """Start a fault now; raises ``servers.core.faults.FaultError`` (a ValueError) if it makes no sense."""
        fault = self.faults.add(kind, scope, value, now=self.ctx.clock(), duration=duration, jitter=jitter)
        if kind is Kind.DROP:
            self.drop(None if scope == ALL else scope)
        elif kind in (Kind.OUTAGE, Kind.CRASH):
            self._outages.add(fault.id)
            self._spawn(self.stop_listeners())
            if kind is Kind.CRASH and self._rtc is not None:
                # A crashed process loses its WebRTC peers too; in an outage they live on,
                # since signaling is only for setup.
                self._rtc.drop()
        log.info("fault started: %s", fault.describe())
        self._notify("started", fault)
        if kind in ONE_SHOT:
            self._notify("ended", fault)
        return fault

    def clear_faults(self, fault_id: int | None = None) -> list[Fault]:
        """End one fault (every fault when None) now; return what was cleared."""
        cleared = self.faults.clear(fault_id)
        self._ended(cleared)
        return cleared

    def _ended(self, faults: list[Fault]) -> None:
        for fault in faults:
            if fault.id in self._outages:
                self._outages.discard(fault.id)
                crash = fault.kind is Kind.CRASH
                if not self._outages:
                    self._spawn(self._come_back(forget=crash))
                elif crash:  # the crashed process is back but another outage holds the listeners
                    self.hub.forget()
                    self.events.publish(BufferReset(cause="crash", first=self.hub.first_available))
            log.info("fault ended: %s", fault.describe())
            self._notify("ended", fault)

    def _notify(self, what: Literal["started", "ended"], fault: Fault) -> None:
        # "published" lets a follower tell what was published before the fault from what after.
        self.events.publish(FaultChanged(what=what, fault=fault.to_json(self.ctx.clock()), published=self.hub.last_seq))

    async def _come_back(self, forget: bool) -> None:
        """End an outage: rebind every listener, retrying (and saying so) while a port is taken."""
        while True:
            try:
                await self.start_listeners(forget=forget)
                return
            except OSError as exc:
                log.warning("cannot listen again after the outage (%s); retrying in %g s", exc, REBIND_RETRY_S)
            forget = False  # the buffer is forgotten once
            await asyncio.sleep(REBIND_RETRY_S)
            if self._outages:  # a new outage began meanwhile: it brings the listeners back
                return

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _tick(self) -> None:
        """End timed faults; tell followers the publisher's figures and too-slow cuts."""
        last_figures = -PUBLISHER_EVERY_S
        cut = self.broadcaster.slow_cuts
        while True:
            await asyncio.sleep(FAULT_TICK_S)
            now = self.ctx.clock()
            self.faults.expire(now)
            self._ended(self.faults.drain_ended())
            if self.broadcaster.slow_cuts != cut:
                self.events.publish(BufferReset(cause="too_slow", cut=self.broadcaster.slow_cuts - cut))
                cut = self.broadcaster.slow_cuts
            if now - last_figures >= PUBLISHER_EVERY_S:
                last_figures = now
                self.events.publish(PublisherFigures(
                    published=self.hub.last_seq, rate=self.publisher.rate,
                    replay_from=self.hub.first_available, health=self.health().to_json(),
                ))

    @property
    def rate(self) -> float:
        return self.publisher.rate

    @property
    def published(self) -> int:
        return self.hub.last_seq

    @property
    def replay_from(self) -> int:
        return self.hub.first_available

    def now(self) -> float:
        return self.ctx.clock()

    def active_faults(self) -> list[Fault]:
        return self.faults.active(self.ctx.clock())

    def drop(self, transport: str | None = None) -> int:
        """Abruptly close every live connection of ``transport`` (all when None)."""
        return self.ctx.registry.drop(transport)

    def set_rate(self, rate: float) -> None:
        self.publisher.set_rate(rate)
        self.events.publish(RateChanged(rate=rate, published=self.hub.last_seq, replay_from=self.hub.first_available))

    def app(self) -> web.Application | None:
        return self._http.app if self._http else None
