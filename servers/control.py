"""The control API, on its own listener: faults, rate, drops, and an event stream (JSON).

    GET    /control                  this description, as JSON (rtplay.protocol.control_api)
    GET    /control/status           published count, rate, live connections, faults, endpoints, health
    GET    /control/faults           the active faults
    POST   /control/faults           {"kind", "scope"?, "value"?, "jitter"?, "duration"?} → 201
    DELETE /control/faults           clear every fault
    DELETE /control/faults/{id}      clear one (404 if it is not active)
    GET    /control/rate             {"rate": r}
    POST   /control/rate             {"rate": r}
    POST   /control/drop             {"transport"?} abruptly close live connections → {"dropped": n}
    POST   /control/reset            ask every follower to zero its counters → {"reset": true, "followers": n}
    GET    /control/events           newline-delimited JSON events, see :mod:`servers.core.events`

The control listener is not one of the fault-bearing listeners: it keeps answering during an
``outage`` or a ``crash`` (like Toxiproxy's API), so a script can always end what it started.
Every invalid request gets a 400 with ``{"error": "<what was wrong>"}``; bodies are strict JSON
in each fault kind's range, and who may call at all is :mod:`servers.core.guard`'s job.
"""

from __future__ import annotations

import asyncio
import logging
import math
from typing import Any, Protocol

from aiohttp import web
from aiohttp.typedefs import Middleware

from rtplay.protocol import control_api
from rtplay.protocol.control_events import Bye, Hello, encode
from rtplay.protocol.faults import ALL, TRANSPORTS, Fault, FaultError, Kind
from rtplay.protocol.options import MAX_RATE
from rtplay.protocol.strictjson import JsonError, as_float, dumps_strict
from rtplay.runtime.serverlog import server_logger
from servers.core.events import EventBus
from servers.core.guard import json_object, json_response
from servers.http.common import MAX_REQUEST_BYTES, bad_request
from servers.http.limits import ConnectionCap

log = logging.getLogger(__name__)


class ControlTarget(Protocol):
    """What the control API drives: the server, through the operations the API offers."""

    @property
    def events(self) -> EventBus:
        """What ``GET /control/events`` followers are told."""

    @property
    def rate(self) -> float:
        """The publish rate (msg/s)."""

    @property
    def published(self) -> int:
        """The hub's last seq."""

    @property
    def replay_from(self) -> int:
        """The oldest seq the hub can still replay."""

    def now(self) -> float:
        """The fault engine's clock (monotonic seconds)."""

    def status(self, load_s: float = ...) -> dict[str, Any]:
        """Everything a follower needs: endpoints, faults, rate, published, load, health."""

    def active_faults(self) -> list[Fault]:
        """The faults acting now, oldest first."""

    def add_fault(
        self, kind: Kind, scope: str = ..., value: float | None = ..., *, jitter: float = ..., duration: float | None = ...
    ) -> Fault:
        """Start a fault; :class:`FaultError` when it makes no sense."""

    def clear_faults(self, fault_id: int | None = ...) -> list[Fault]:
        """End one fault (or all); the faults ended."""

    def set_rate(self, rate: float) -> None:
        """Publish at ``rate`` msg/s from now on."""

    def drop(self, transport: str | None = ...) -> int:
        """Abort every live connection of ``transport`` (all when None); how many."""

    def reset_counters(self) -> int:
        """Tell every follower to zero its counters; how many followers were told."""


SERVER: web.AppKey[ControlTarget] = web.AppKey("rtplay-server")

#: How long a stopping control listener waits for in-flight handlers (event streams are
#: ended first, so nothing should be left).
SHUTDOWN_TIMEOUT_S = 0.5

def _number(body: dict[str, Any], key: str) -> float | None:
    value = body.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise FaultError(f"{key} must be a finite number, got {value!r:.40}")
    try:
        return as_float(value, key)  # a 5,000-digit integer is JSON, but no figure
    except JsonError as exc:
        raise FaultError(f"{key} must be a finite number: {exc}") from None


async def describe(request: web.Request) -> web.Response:
    """``GET /control``: every endpoint, body field, range and answer, for scripts."""
    return json_response(control_api.describe())


#: How much of the load series ``/control/status`` returns by default (``?load_s=`` asks for
#: more, up to LOAD_MAX_S): 10 s is 100 bins per series, small enough to poll.
LOAD_DEFAULT_S = 10.0
LOAD_MAX_S = 3600.0


async def status(request: web.Request) -> web.Response:
    try:
        load_s = float(request.query.get("load_s", LOAD_DEFAULT_S))
    except ValueError:
        load_s = math.nan
    if not 0 <= load_s <= LOAD_MAX_S:
        return bad_request(f"load_s must be 0-{LOAD_MAX_S:g} seconds")
    return json_response(request.app[SERVER].status(load_s))


async def list_faults(request: web.Request) -> web.Response:
    server = request.app[SERVER]
    now = server.now()
    return json_response({"faults": [f.to_json(now) for f in server.active_faults()]})


async def add_fault(request: web.Request) -> web.Response:
    server = request.app[SERVER]
    body = await json_object(request)
    try:
        kind = Kind(body.get("kind"))
    except ValueError:
        return bad_request(f"kind must be one of {', '.join(k.value for k in Kind)}, got {body.get('kind')!r}")
    try:
        scope = body.get("scope", ALL)
        if not isinstance(scope, str):
            raise FaultError("scope must be a string")
        fault = server.add_fault(
            kind,
            scope,
            _number(body, "value"),
            jitter=_number(body, "jitter") or 0.0,
            duration=_number(body, "duration"),
        )
    except FaultError as exc:
        return bad_request(str(exc))
    # The hub's last seq as the fault began: what a client saw later came after it.
    return json_response({"fault": fault.to_json(server.now()), "published": server.published}, 201)


async def clear_faults(request: web.Request) -> web.Response:
    server = request.app[SERVER]
    raw = request.match_info.get("id")
    if raw is not None and not (raw.isascii() and raw.isdigit() and len(raw) <= 18):
        return bad_request(f"fault id must be an integer, got {raw!r}")
    cleared = server.clear_faults(int(raw) if raw is not None else None)
    if raw is not None and not cleared:
        return json_response({"error": f"no active fault {raw}"}, 404)
    now = server.now()
    return json_response({"cleared": [f.to_json(now) for f in cleared]})


async def get_rate(request: web.Request) -> web.Response:
    return json_response({"rate": request.app[SERVER].rate})


async def set_rate(request: web.Request) -> web.Response:
    body = await json_object(request)
    rate = body.get("rate")
    if isinstance(rate, bool) or not isinstance(rate, int | float) or not 0 <= rate <= MAX_RATE:
        return bad_request(f"rate must be a number 0-{MAX_RATE:g} (msg/s), got {rate!r:.40}")
    server = request.app[SERVER]
    server.set_rate(float(rate))
    # Publishing at the old rate has stopped: the count is final when the rate is 0.
    return json_response({"rate": float(rate), "published": server.published, "replay_from": server.replay_from})


async def drop(request: web.Request) -> web.Response:
    body = await json_object(request) if request.body_exists else {}
    transport = body.get("transport")
    if transport is not None and transport not in TRANSPORTS:
        return bad_request(f"transport must be one of {', '.join(TRANSPORTS)}, got {transport!r}")
    return json_response({"dropped": request.app[SERVER].drop(transport)})


async def reset_counters(request: web.Request) -> web.Response:
    """The counters live with whoever accounts (a session): tell every follower."""
    return web.json_response({"reset": True, "followers": request.app[SERVER].reset_counters()})


async def events(request: web.Request) -> web.StreamResponse:
    """Stream the server's events, one JSON object per line, starting with a ``hello``."""
    server = request.app[SERVER]
    feed = server.events.subscribe()
    response = web.StreamResponse(headers={"Content-Type": "application/x-ndjson", "Cache-Control": "no-store"})
    try:
        await response.prepare(request)
        await response.write((dumps_strict(encode(Hello(server.status()))) + "\n").encode())
        while (batch := await feed.next_batch()) is not None:
            await response.write("".join(dumps_strict(encode(e)) + "\n" for e in batch).encode())
        if feed.reason:
            await response.write((dumps_strict(encode(Bye(feed.reason))) + "\n").encode())
    except ConnectionResetError:  # the follower went away
        pass
    finally:
        server.events.unsubscribe(feed)
    return response


class ControlListener:
    """The control API's own HTTP listener (up while the server runs, whatever the faults)."""

    def __init__(
        self, server: ControlTarget, guard: Middleware, host: str, port: int, connections: ConnectionCap,
        keepalive_s: float,
    ) -> None:
        self.server = server
        self._guard = guard
        self.keepalive_s = keepalive_s
        """How long a silent socket or a slow request head may hold a descriptor here (the
        HTTP listener's header and idle deadlines, the shorter of the two)."""
        self.connections = connections
        """The connection cap and body deadline shared with the HTTP listener."""
        self.host = host
        self.port = port
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/control"

    async def start(self) -> None:
        # No CORS here, ever: only the user may drive the control API (see servers.core.guard).
        app = web.Application(client_max_size=MAX_REQUEST_BYTES, middlewares=[self.connections.middleware, self._guard])
        app[SERVER] = self.server
        app.router.add_get("/control", describe)
        app.router.add_get("/control/status", status)
        app.router.add_get("/control/faults", list_faults)
        app.router.add_post("/control/faults", add_fault)
        app.router.add_delete("/control/faults", clear_faults)
        app.router.add_delete("/control/faults/{id}", clear_faults)
        app.router.add_get("/control/rate", get_rate)
        app.router.add_post("/control/rate", set_rate)
        app.router.add_post("/control/drop", drop)
        app.router.add_post("/control/reset", reset_counters)
        app.router.add_get("/control/events", events)
        runner = web.AppRunner(
            app, shutdown_timeout=SHUTDOWN_TIMEOUT_S, access_log=None, logger=server_logger(),
            keepalive_timeout=self.keepalive_s,
        )
        await runner.setup()
        try:
            await self.connections.site(runner, self.host, self.port).start()
        except BaseException:
            await runner.cleanup()
            raise
        self.port = runner.addresses[0][1]
        self._runner = runner
        log.info("control API on %s", self.url)

    async def stop(self) -> None:
        runner, self._runner = self._runner, None
        if runner is not None:
            self.server.events.close_all("server stopping")
            await asyncio.sleep(0)  # let the event streams write their goodbye
            if runner.server is not None:
                self.connections.forget(runner.server)
            await runner.cleanup()
