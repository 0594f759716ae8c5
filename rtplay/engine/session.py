"""The engine: clients, the server they talk to, faults, events, reports.

The server is another process by default (:mod:`rtplay.engine.spawn`), or one already running
(``SessionConfig.server_url``). Either way the session drives it only through its control
API and follows it through its event stream (:mod:`rtplay.engine.control_client`) — the same path a
script or a second terminal uses. One :class:`Session` serves both the TUI and headless
mode, so tests exercise what users run.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from rtplay.clients import CLIENT_CLASSES, CLIENTS, Endpoints
from rtplay.clients.base import Client, ClientHooks, Network
from rtplay.clients.core import ReconnectingClient, run_guarded
from rtplay.engine.control_client import ControlClient, ControlError, ServerMirror, endpoints_of
from rtplay.engine.crowd_pool import Crowd
from rtplay.engine.crowds import CrowdSet, CrowdSettings
from rtplay.engine.faults import FaultController
from rtplay.engine.message_log import MessageLog
from rtplay.engine.session_log import EndState, SessionRecorder
from rtplay.engine.spawn import ServerProcess
from rtplay.model.accounting import UNRELIABLE_GRACE_S, View
from rtplay.model.draws import PortableRandom, stream_seed
from rtplay.model.events import Connected, Event, Failed, State
from rtplay.model.retry_spec import PolicySpec
from rtplay.protocol.control_events import CountersReset, Hello, RateChanged
from rtplay.protocol.faults import TRANSPORTS
from rtplay.protocol.options import ServerOptions
from rtplay.runtime.health import LoopMonitor, OverloadClock, SideHealth, health_report

log = logging.getLogger(__name__)

Listener = Callable[[Event], None]

#: How long :meth:`Session.settle` waits by default for clients to catch up at the end.
DEFAULT_SETTLE_S = 5.0

#: How long the session waits for the event stream's hello before giving up on a server.
HELLO_TIMEOUT_S = 10.0

#: How long a session on its own server holds publishing back for its clients' first
#: connections. One that opens after seq 1 replays what it missed, and that start-up catch-up
#: (WebRTC's ICE and DTLS take ~0.4 s more than the rest) would read as its latency: at 50
#: msg/s it was rtc's whole p99 (~200 ms instead of ~5). A client not open by then (one that
#: cannot reach its endpoint) holds the others up no longer.
FIRST_OPEN_WAIT_S = 3.0

def available_transports() -> list[str]:
    """The transports this installation has a client for, in display order."""
    return [name for name in TRANSPORTS if name in CLIENTS]


@dataclass
class SessionConfig:
    transports: list[str] = field(default_factory=available_transports)
    server: ServerOptions = field(default_factory=ServerOptions)
    """Options of the server the session spawns (ignored when attaching)."""
    server_url: str | None = None
    token: str | None = None
    """The control token of a server bound beyond loopback (``--token``; else ``$RTPLAY_TOKEN``
    or the token file ``rtplay serve`` wrote on this machine)."""
    """Attach to the server whose control API is here (``http://host:port/control``) instead of
    spawning one; its publish rate is left as it is."""
    server_stderr: int | IO[Any] | None = None
    """Where a spawned server's log goes (None: this process's stderr)."""
    launched: ServerProcess | None = None
    """A server process launched already (the CLI launches it before importing the clients,
    so both processes start up at once); the session takes it over."""
    client_options: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Per-transport keyword arguments for the client (e.g. ``{"poll": {"interval": 0.5}}``)."""
    emit_messages: bool = False
    """Emit a :class:`MessageReceived` per envelope (tests, debugging); off for speed."""
    crowd: int = 0
    """Lightweight clients per transport besides the pane's own (``--clients N``; 0 = none)."""
    crowd_seed: int = 0
    """Seeds the crowd clients' jitter (client i draws from ``Random(seed + i)``)."""
    retry_seed: int | None = None
    """Seeds the retry jitter of the session's own reconnecting clients with portable streams
    (:mod:`rtplay.model.draws`, one per transport): a page opened with the same seed
    (``--browser``) draws the same numbers, so both retry on the same schedule. None: unseeded."""
    crowd_cluster: str | None = None
    """The Dask scheduler the crowds run on (``--cluster tcp://HOST:8786``); None: a LocalCluster."""
    crowd_workers: int | None = None
    """Worker processes of the LocalCluster (None: one per core, fewer for a small crowd)."""
    log_messages: Path | None = None
    """Write every arrival and connection change to this file (``--log-messages``)."""

    def __post_init__(self) -> None:
        unknown = [t for t in self.transports if t not in CLIENTS]
        if unknown:
            known = ", ".join(available_transports())
            raise ValueError(f"unknown transport(s) {', '.join(unknown)}: expected some of {known}")
        if not self.transports:
            raise ValueError("no transports chosen")


class Session:
    """One client per chosen transport and the server they talk to, driven as one unit."""

    def __init__(self, config: SessionConfig | None = None) -> None:
        self.config = config or SessionConfig()
        self.process = self.config.launched
        """The spawned server (``config.launched``, or launched by :meth:`start` unless
        ``config.server_url`` names one to attach to)."""
        self.control: ControlClient | None = None
        self.server = ServerMirror()
        """What the session knows of the server, from its event stream."""
        self.server_endpoints: Endpoints | None = None
        self.control_url = ""
        self.clients: dict[str, Client] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._follower: asyncio.Task[None] | None = None
        self._hello = asyncio.Event()
        self._listeners: list[Listener] = []
        self.started_at: float | None = None
        self.publishing_stopped_at: float | None = None
        self.clock: Callable[[], float] = time.monotonic
        self.network = Network()
        """The clients' own network (the ``offline`` fault), switched on this side."""
        self.faults = FaultController(
            self._api, self.server, self.emit, lambda: self.clock(), self.clients, self.view_of, lambda: self.started_at,
            self.network,
        )
        self.subscribe(self.faults.on_event)
        self.monitor = LoopMonitor()
        """The client side's event-loop lag (clients, session and UI share this loop)."""
        self.overload = OverloadClock()
        self.monitor.on_sample = self._on_health_sample
        settings = CrowdSettings(
            self.config.crowd, list(self.config.transports), self.config.crowd_seed, self.config.crowd_cluster,
            self.config.client_options, self.config.crowd_workers,
        )
        self.crowd_set = CrowdSet(
            settings, lambda load_s: self._api().status(load_s), lambda: self.clock(), lambda: self.published,
            lambda: self.server.replay_from,
        )
        """The crowds (``--clients N``) and the Dask cluster they run on."""
        self.settled: bool | None = None
        """The end-of-run settle's outcome: True when every client caught up in time."""
        self.recorder: SessionRecorder | None = None
        """Writes the message log (``config.log_messages``), from the first client on."""
        self.seq_origin = 0
        """The server's last seq when the session attached (0 on its own server): its clients
        start after it, and its ``published`` counts from it."""
        self.rate_found: float | None = None
        """An attached server's rate when the session found it, restored when it stops."""

    # --- events --------------------------------------------------------------------------

    def subscribe(self, listener: Listener) -> None:
        """Call ``listener`` synchronously with every event (keep it quick)."""
        self._listeners.append(listener)

    def unsubscribe(self, listener: Listener) -> None:
        if listener in self._listeners:
            self._listeners.remove(listener)

    def emit(self, event: Event) -> None:
        if isinstance(event, Failed) and event.transport in self.clients:
            self.clients[event.transport].subscribed_until = self.published
        for listener in list(self._listeners):
            try:
                listener(event)
            except Exception:  # a broken listener must not take a client down
                log.exception("event listener failed on %r", event)

    # --- lifecycle -------------------------------------------------------------------------

    def endpoints(self) -> Endpoints:
        if self.server_endpoints is None:
            raise RuntimeError("the session has not started")
        return self.server_endpoints

    async def start(self, before_publishing: Callable[[], Awaitable[None]] | None = None) -> None:
        """Reach the server (spawning it unless attaching), then start every client, then publishing.

        ``before_publishing`` is awaited beside the wait for the clients' first connections
        (e.g. headless Chromium opening its page, ``--browser``): publishing holds for it too,
        so every subscriber sees seq 1 live and the run lasts what was asked.
        """
        try:
            await self._connect()
        except BaseException:
            await self.stop()
            raise
        if self.process is None:  # attached: remember what to leave as it was found
            self.seq_origin = self.server.published
            self.rate_found = self.server.rate
        try:
            await self._start_clients(self.endpoints(), before_publishing)
        except BaseException:
            await self.crowd_set.close()  # a half-started crowd cluster cleans up after itself
            raise
        self.started_at = self.clock()
        if self.recorder is not None:
            self.recorder.set_origin(self.started_at)
        self.faults.start()
        self.monitor.start()

    async def _start_clients(
        self, endpoints: Endpoints, before_publishing: Callable[[], Awaitable[None]] | None
    ) -> None:
        """Start every client and crowd, then publishing once the first ones are open."""
        for name in self.config.transports:
            options = dict(self.config.client_options.get(name, {}))
            if self.config.emit_messages:
                options["emit_messages"] = True
            if self.config.log_messages is not None and self.recorder is None:
                self.recorder = SessionRecorder(MessageLog(self.config.log_messages), lambda: self.published)
                self.subscribe(self.recorder.on_event)
            options["hooks"] = self._hooks_for(name)
            if self.config.retry_seed is not None and issubclass(CLIENT_CLASSES[name], ReconnectingClient):
                options.setdefault("rng", PortableRandom(stream_seed(str(self.config.retry_seed), name)))
            client = CLIENTS[name](endpoints, self.emit, options)
            client.start_from(self.seq_origin)  # a running server's backlog is not this session's
            self.clients[name] = client
        # Our own server starts paused, so that every client sees seq 1 live: those that hold a
        # connection open it first (publishing waits for them, see FIRST_OPEN_WAIT_S). One that only samples (poll) asks once publishing has
        # begun, else its first answer is empty and its first message a whole interval late.
        paused = self.process is not None
        samplers = [n for n, c in self.clients.items() if paused and not isinstance(c, ReconnectingClient)]
        for name in self.clients:
            if name not in samplers:
                self._start_client(name)
        if self.config.crowd:
            await self.crowd_set.start(endpoints)
        if paused:
            streams = [n for n, c in self.clients.items() if isinstance(c, ReconnectingClient) and c.opens_before_data]
            waits: list[Awaitable[None]] = [self._until_open(streams, FIRST_OPEN_WAIT_S)]
            if before_publishing is not None:
                waits.append(before_publishing())
            await asyncio.gather(*waits)
            await self.set_rate(self.config.server.rate)
        elif before_publishing is not None:  # an attached server publishes already
            await before_publishing()
        for name in samplers:
            self._start_client(name)
        if self.config.crowd:
            await self.crowd_set.ready()

    def _hooks_for(self, name: str) -> ClientHooks:
        """What the client of ``name`` is told of this session."""

        def arrival(now: float, channel: str, seq: int, new: bool, latency_ms: float) -> None:
            self.faults.on_arrival(name, now, channel, seq, new, latency_ms)

        return ClientHooks(
            arrival=arrival,
            audit=self.recorder.audit if self.recorder is not None else None,
            network=self.network,
            published_now=lambda: self.published,
        )

    async def _connect(self) -> None:
        url = self.config.server_url
        if url is None:
            if self.process is None:
                self.process = ServerProcess.launch(self.config.server, self.config.server_stderr)
            await self.process.wait_ready()
            url = self.process.control_url
        self.control_url = url
        self.control = ControlClient(url, self.config.token)
        self._follower = asyncio.create_task(self._follow(self.control), name="rtplay-server-events")
        async with asyncio.timeout(HELLO_TIMEOUT_S):
            hello = asyncio.ensure_future(self._hello.wait())
            done, _ = await asyncio.wait({hello, self._follower}, return_when=asyncio.FIRST_COMPLETED)
            if hello not in done:
                hello.cancel()
                self._follower.result()  # raises why the stream ended
                raise ControlError(f"the event stream of {url} ended before its hello")

    async def _follow(self, control: ControlClient) -> None:
        async for event in control.events():
            now = self.clock()
            if isinstance(event, Hello):
                self.server_endpoints = endpoints_of(event.status)
            change = self.server.apply(event, now)
            if isinstance(event, Hello):
                self._hello.set()
            if change is not None:
                self.faults.on_server_fault(*change)
            if isinstance(event, CountersReset):  # POST /control/reset, from anyone
                self.reset_counters()
        log.info("the server's event stream ended")

    async def _until_open(self, names: list[str], timeout: float) -> None:
        """Until every client in ``names`` has connected or failed (at most ``timeout`` s)."""
        waiting = {n for n in names if self.clients[n].state not in (State.OPEN, State.FAILED)}
        if not waiting:
            return
        done = asyncio.Event()

        def listener(event: Event) -> None:
            if isinstance(event, Connected | Failed) and event.transport in waiting:
                waiting.discard(event.transport)
                if not waiting:
                    done.set()

        self.subscribe(listener)  # no await since the state check: no event slips between
        try:
            async with asyncio.timeout(timeout):
                await done.wait()
        except TimeoutError:
            log.info("publishing starts with %s still connecting", ", ".join(sorted(waiting)))
        finally:
            self.unsubscribe(listener)

    def _start_client(self, name: str) -> None:
        self._tasks[name] = asyncio.create_task(self._run_client(self.clients[name]), name=f"rtplay-{name}")

    async def _run_client(self, client: Client) -> None:
        await run_guarded(client)  # a client bug ends that client, never the session

    async def stop(self) -> None:
        """Stop every client, stop following the server, stop a spawned one; safe to call twice."""
        self.close_message_log()
        await self.monitor.stop()
        await self.faults.stop()
        await self.crowd_set.close()
        for task in self._tasks.values():
            task.cancel()
        if self._tasks:  # wait for them; a cancellation of this call itself still propagates
            await asyncio.wait(self._tasks.values())
        self._tasks.clear()
        for client in self.clients.values():
            client.stopped()
        if self.process is None:
            await self._leave_server_as_found()
        if self._follower is not None:
            self._follower.cancel()
            await asyncio.wait([self._follower])  # a cancellation of this call still propagates
            error = None if self._follower.cancelled() else self._follower.exception()
            if error is not None and not isinstance(error, ControlError):
                raise error
            self._follower = None
        if self.control is not None:
            await self.control.aclose()
            self.control = None
        if self.process is not None:
            await self.process.stop()
            self.process = None

    async def _leave_server_as_found(self) -> None:
        """An attached server is shared: clear the faults this session added and still on,
        and set back the rate it had. Faults someone else added stay as they are."""
        if self.control is None:
            return
        for fault_id in self.faults.added_and_active():
            try:
                await self.control.clear_faults(fault_id)
            except ControlError as exc:  # ended meanwhile (404), or the server went away
                log.info("fault %d not cleared: %s", fault_id, exc)
        if self.rate_found is not None and self.server.rate != self.rate_found:
            try:
                await self.set_rate(self.rate_found)
            except ControlError as exc:
                log.warning("could not set the server's rate back to %g: %s", self.rate_found, exc)

    async def __aenter__(self) -> Session:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # --- crowds ----------------------------------------------------------------------------

    @property
    def crowds(self) -> dict[str, Crowd]:
        """The crowd of each transport (``--clients N``; empty without)."""
        return self.crowd_set.crowds

    async def finish_crowds(self) -> None:
        """Stop the crowds and collect their figures and the server's load (before :meth:`report`)."""
        await self.crowd_set.finish(self.started_at)

    async def restart_crowd(self, name: str, policy: str) -> None:
        """Replace ``name``'s crowd by a fresh one under ``policy`` (same size, seed, knobs)."""
        await self.crowd_set.restart(name, policy, self.endpoints())

    # --- control ---------------------------------------------------------------------------

    def _api(self) -> ControlClient:
        if self.control is None:
            raise ControlError("the session is not connected to a server")
        return self.control

    @property
    def published(self) -> int:
        """The server's published count, as its events last said."""
        return self.server.published

    @property
    def published_count(self) -> int:
        """Messages published since the session began following the server (its figures' span)."""
        return max(0, self.published - self.seq_origin)

    @property
    def rate(self) -> float:
        return self.server.rate

    async def set_rate(self, rate: float) -> None:
        answer = await self._api().set_rate(rate)
        self.server.apply(RateChanged(float(answer["rate"]), int(answer["published"]), int(answer["replay_from"])), self.clock())

    def restart_client(self, name: str) -> bool:
        """Start ``name``'s client again if it failed for good (like opening a new EventSource).

        Its accounting carries on; an SSE client keeps its last event ID, so it resumes.
        Returns False when the client is still running.
        """
        task = self._tasks.get(name)
        if task is not None and not task.done():
            return False
        client = self.clients[name]
        client.subscribed_until = None
        self._start_client(name)
        return True

    def set_policy(self, name: str, spec: PolicySpec) -> bool:
        """``name``'s client decides its next waits by ``spec``; False when it has no policy (poll)."""
        client = self.clients.get(name)
        if not isinstance(client, ReconnectingClient):
            return False
        client.set_policy(spec)
        self.config.client_options.setdefault(name, {})["retry"] = spec
        return True

    async def drop(self, transport: str | None = None) -> int:
        """Abruptly close every live connection of ``transport`` (all when None)."""
        return await self._api().drop(transport)

    async def settle(self, timeout: float = DEFAULT_SETTLE_S) -> bool:
        """Stop publishing and wait until every live client has everything; False on timeout.

        Downtime stops counting when publishing stops, and the report waits out the
        unreliable channels' grace (:data:`UNRELIABLE_GRACE_S`) so their tails are settled.
        """
        await self.set_rate(0)  # the answer carries the final published count
        if self.publishing_stopped_at is None:
            self.publishing_stopped_at = self.clock()
            for client in self.clients.values():
                client.conn.cutoff = self.publishing_stopped_at
        deadline = self.clock() + timeout
        self.settled = False
        while self.clock() < deadline:
            crowd_cursor = self.crowd_set.cursor_min()
            if all(self.caught_up(c) for c in self.clients.values()) and (
                crowd_cursor is None or crowd_cursor >= self.published
            ):
                self.settled = True
                break
            await asyncio.sleep(0.02)
        grace_left = self.publishing_stopped_at + UNRELIABLE_GRACE_S - self.clock()
        if grace_left > 0:
            await asyncio.sleep(grace_left)
        return self.settled

    def caught_up(self, client: Client) -> bool:
        """True when ``client`` has the last published seq on its resumable channel (or failed).

        Only the first channel counts: an unreliable channel whose last message was lost
        never reaches the end, and waiting for it would only stall the report.
        """
        if client.state is State.FAILED:
            return True
        return client.stats[client.channels[0]].tracker.highest >= self.published

    # --- health ----------------------------------------------------------------------------

    def _server_overloaded(self) -> bool:
        # The server measures its own loop; its figures arrive with its publisher events.
        return self.server.health is not None and self.server.health.overloaded

    def _on_health_sample(self, now: float) -> None:
        self.overload.update(self._server_overloaded() or self.monitor.meter.overloaded(now), now)

    def overloaded_sides(self) -> list[str]:
        """Which side is overloaded right now: ``[]``, ``["server"]``, ``["client"]`` or both."""
        sides = ["server"] if self._server_overloaded() else []
        return sides + (["client"] if self.monitor.meter.overloaded(self.monitor.clock()) else [])

    def health(self) -> dict[str, Any]:
        """The report's ``health`` section."""
        meter = self.monitor.meter
        client = SideHealth(meter.summary(), None, meter.overloaded(self.monitor.clock()), meter.overloaded_s)
        return health_report(client, self.server.health, self.overload.seconds)

    # --- reporting -------------------------------------------------------------------------

    def duration(self) -> float:
        """Seconds of publishing so far (up to :meth:`settle`, which stops publishing)."""
        if self.started_at is None:
            return 0.0
        return (self.publishing_stopped_at or self.clock()) - self.started_at

    def final(self) -> bool:
        """Publishing stopped at least the unreliable grace ago: every tail is settled."""
        stopped = self.publishing_stopped_at
        return stopped is not None and self.clock() - stopped >= UNRELIABLE_GRACE_S

    def view_of(self, client: Client) -> View:
        """The context ``client``'s figures are taken in now (one rule for every screen)."""
        return client.view(self.published, self.server.replay_from, self.final())

    def report(self) -> dict[str, Any]:
        """The JSON report (field names are a contract other tools read)."""
        published, replay_from, final = self.published, self.server.replay_from, self.final()
        transports = {name: c.report(published, replay_from, final) for name, c in self.clients.items()}
        server_load = self.crowd_set.report_into(transports, self.started_at)
        report = {
            "published": self.published_count,
            "duration_s": round(self.duration(), 3),
            "settled": self.settled,
            "transports": transports,
            "faults": self.faults.report(),
            "health": self.health(),
        }
        if server_load is not None:
            report["server_load"] = server_load
        return report

    def close_message_log(self) -> None:
        """Write the log's ``end`` record (what the figures were taken against) and close it."""
        recorder, self.recorder = self.recorder, None
        if recorder is None:
            return
        self.unsubscribe(recorder.on_event)
        for client in self.clients.values():
            client.flush_audit()
        clients = {
            n: {"state": c.state.value, "connected": c.conn.connected, "subscribed_until": c.subscribed_until}
            for n, c in self.clients.items()
        }
        recorder.close(EndState(self.published, self.server.replay_from, self.final(), self.clock(), clients,
                                self.publishing_stopped_at))

    def reset_counters(self) -> None:
        """Zero every figure (counters, latency, downtime, fault records); connections carry on."""
        for client in self.clients.values():
            client.restart_counting()
        self.faults.recovery.clear()
