"""The control API: read and set faults and the publish rate over JSON (like Toxiproxy's).

    GET    /control/status           published count, rate, live connections, faults
    GET    /control/faults           the active faults
    POST   /control/faults           {"kind", "scope"?, "value"?, "jitter"?, "duration"?} → 201
    DELETE /control/faults           clear every fault
    DELETE /control/faults/{id}      clear one (404 if it is not active)
    GET    /control/rate             {"rate": r}
    POST   /control/rate             {"rate": r}

Every invalid request gets a 400 with ``{"error": "<what was wrong>"}``.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from aiohttp import web

from rtplay.protocol.faults import ALL, TRANSPORTS, FaultError, Kind
from servers.http import bad_request

if TYPE_CHECKING:
    from servers.runner import Server

SERVER: web.AppKey[Server] = web.AppKey("rtplay-server")

#: Highest publish rate the API accepts: beyond it the hub, not the transports, is measured.
MAX_RATE = 100_000


async def _json_body(request: web.Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise web.HTTPBadRequest(text=json.dumps({"error": "body is not JSON"}), content_type="application/json")
    if not isinstance(body, dict):
        raise web.HTTPBadRequest(text=json.dumps({"error": "body must be a JSON object"}), content_type="application/json")
    return body


def _number(body: dict[str, Any], key: str) -> float | None:
    value = body.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise FaultError(f"{key} must be a number, got {value!r}")
    return float(value)


async def status(request: web.Request) -> web.Response:
    server = request.app[SERVER]
    now = server.ctx.clock()
    return web.json_response(
        {
            "published": server.hub.last_seq,
            "rate": server.publisher.rate,
            "connections": {t: server.ctx.registry.count(t) for t in TRANSPORTS},
            "faults": [f.to_json(now) for f in server.faults.active(now)],
        }
    )


async def list_faults(request: web.Request) -> web.Response:
    server = request.app[SERVER]
    now = server.ctx.clock()
    return web.json_response({"faults": [f.to_json(now) for f in server.faults.active(now)]})


async def add_fault(request: web.Request) -> web.Response:
    server = request.app[SERVER]
    body = await _json_body(request)
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
    return web.json_response({"fault": fault.to_json(server.ctx.clock())}, status=201)


async def clear_faults(request: web.Request) -> web.Response:
    server = request.app[SERVER]
    raw = request.match_info.get("id")
    if raw is not None and not raw.isdigit():
        return bad_request(f"fault id must be an integer, got {raw!r}")
    cleared = server.clear_faults(int(raw) if raw is not None else None)
    if raw is not None and not cleared:
        return web.json_response({"error": f"no active fault {raw}"}, status=404)
    now = server.ctx.clock()
    return web.json_response({"cleared": [f.to_json(now) for f in cleared]})


async def get_rate(request: web.Request) -> web.Response:
    return web.json_response({"rate": request.app[SERVER].publisher.rate})


async def set_rate(request: web.Request) -> web.Response:
    body = await _json_body(request)
    rate = body.get("rate")
    if isinstance(rate, bool) or not isinstance(rate, int | float) or not 0 <= rate <= MAX_RATE:
        return bad_request(f"rate must be a number 0-{MAX_RATE} (msg/s), got {rate!r}")
    request.app[SERVER].set_rate(float(rate))
    return web.json_response({"rate": float(rate)})


def install(server: Server):  # type: ignore[no-untyped-def]
    """An app hook adding the control routes for ``server``."""

    def hook(app: web.Application) -> None:
        app[SERVER] = server
        app.router.add_get("/control/status", status)
        app.router.add_get("/control/faults", list_faults)
        app.router.add_post("/control/faults", add_fault)
        app.router.add_delete("/control/faults", clear_faults)
        app.router.add_delete("/control/faults/{id}", clear_faults)
        app.router.add_get("/control/rate", get_rate)
        app.router.add_post("/control/rate", set_rate)

    return hook
