"""Who may drive the control API, and the strict JSON it speaks.

The server runs on the user's machine while they browse the web, and one control request can
take every listener down. So ``/control/*`` answers only its user:

- no CORS headers, and a JSON ``Content-Type`` on every request with a body: a foreign page
  can then only send "simple" requests (``text/plain``, forms), which are refused, and a
  preflight for anything else is never granted (Fetch standard §3.2.3, CORS-safelisted
  request headers);
- ``Host`` must be exactly a loopback name (``localhost`` or a loopback IP literal) with the
  port the request came in on (DNS rebinding: a page whose name resolves to 127.0.0.1 still
  sends its own name, ``127.evil.example`` included; the rule is
  :func:`rtplay.runtime.loopback.host_refusal`), and an ``Origin``, when sent, must be the
  server itself;
- a token, random per start, whenever the server is bound beyond loopback, where anyone on
  the network could connect. ``rtplay serve`` prints it and stores it where the playground
  reads it (:mod:`rtplay.runtime.token`).

Bodies are parsed by :func:`rtplay.protocol.strictjson.loads_strict` (finite numbers, bounded
nesting, one error type). Answers go out through :func:`json_response`, which refuses to
emit a non-finite number instead of sending invalid JSON.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web

from rtplay.protocol.strictjson import JsonError, dumps_strict, loads_strict
from rtplay.runtime.loopback import host_refusal, listener_port
from rtplay.runtime.token import TOKEN_HEADER

log = logging.getLogger(__name__)

CONTROL_PREFIX = "/control"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def json_response(obj: Any, status: int = 200) -> web.Response:
    """A JSON answer that is always valid JSON."""
    return web.json_response(obj, status=status, dumps=dumps_strict)


def error_response(status: int, message: str) -> web.Response:
    return json_response({"error": message}, status)


async def json_object(request: web.Request) -> dict[str, Any]:
    """The request body as a strict JSON object, or an HTTP 400 saying what is wrong."""
    try:
        body = loads_strict(await request.read())
    except JsonError as exc:
        raise web.HTTPBadRequest(text=dumps_strict({"error": str(exc)}), content_type="application/json") from None
    if not isinstance(body, dict):
        raise web.HTTPBadRequest(text=dumps_strict({"error": "body must be a JSON object"}), content_type="application/json")
    return body


class ControlGuard:
    """The ``/control/*`` gate, as an aiohttp middleware (:meth:`middleware`)."""

    def __init__(self, token: str, require_token: bool) -> None:
        self.token = token
        self.require_token = require_token
        """True when bound beyond loopback: then the token, not the Host, proves the caller."""

    def refusal(self, request: web.Request) -> web.Response | None:
        """Why ``request`` may not drive the control API (an error answer), or None."""
        if not self.require_token and (why := host_refusal(request.host, listener_port(request.transport))) is not None:
            return error_response(403, why)
        origin = request.headers.get("Origin")
        if origin is not None and urlsplit(origin).netloc != request.host:
            return error_response(403, f"cross-origin request from {origin[:80]!r} refused")
        if request.body_exists and request.content_type != "application/json":
            return error_response(415, "Content-Type must be application/json")
        if self.require_token and not self._token_ok(request):
            return error_response(401, f"a control token is required ({TOKEN_HEADER} header)")
        return None

    def _token_ok(self, request: web.Request) -> bool:
        given = request.headers.get(TOKEN_HEADER) or request.headers.get("Authorization", "").removeprefix("Bearer ")
        return hmac.compare_digest(given.strip().encode(), self.token.encode())

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if not request.path.startswith(CONTROL_PREFIX):
            return await handler(request)
        refusal = self.refusal(request)
        if refusal is not None:
            log.warning("control request refused: %s %s: %s", request.method, request.path, refusal.text)
            return refusal
        return await handler(request)
