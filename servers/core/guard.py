"""Who may drive the control API, and the strict JSON it speaks.

The server runs on the user's machine while they browse the web, and one control request can
take every listener down. So ``/control/*`` answers only its user:

- no CORS headers, and a JSON ``Content-Type`` on every request with a body: a foreign page
  can then only send "simple" requests (``text/plain``, forms), which are refused, and a
  preflight for anything else is never granted (Fetch standard §3.2.3, CORS-safelisted
  request headers);
- ``Host`` must be exactly a loopback name (``localhost`` or a loopback IP literal) with the
  port the request came in on (DNS rebinding: a page whose name resolves to 127.0.0.1 still
  sends its own name, ``127.evil.example`` included), and an ``Origin``, when sent, must be
  the server itself;
- a token, random per start, whenever the server is bound beyond loopback, where anyone on
  the network could connect. ``rtplay serve`` prints it and stores it where the playground
  reads it (:mod:`rtplay.runtime.token`).

Bodies are parsed by :func:`loads_strict`: no ``NaN``/``Infinity`` (not JSON, RFC 8259 §6,
and browsers' ``JSON.parse`` rejects them), no number that overflows to infinity, and bounded
nesting, checked before the parser recurses. Answers go out through :func:`json_response`,
which refuses to emit a non-finite number instead of sending invalid JSON.
"""

from __future__ import annotations

import hmac
import json
import logging
import math
import secrets
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from rtplay.runtime.token import TOKEN_HEADER, is_loopback_host

log = logging.getLogger(__name__)

#: Deepest JSON nesting accepted from a client. Control bodies are flat objects (depth 1) and
#: WebSocket pings too; 32 leaves room for any sane extension while staying far below
#: Python's recursion limit (~1000), which a 30,000-deep body would otherwise blow.
MAX_JSON_DEPTH = 32


CONTROL_PREFIX = "/control"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class JsonError(ValueError):
    """A body that is not strict JSON (says why)."""


class JsonTooDeep(JsonError):
    """JSON nested deeper than allowed."""


def nesting_depth(text: str, limit: int) -> int:
    """The deepest ``[``/``{`` nesting of ``text`` (strings skipped), stopping past ``limit``."""
    depth = deepest = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            if depth > deepest:
                deepest = depth
                if deepest > limit:
                    return deepest
        elif char in "]}":
            depth -= 1
    return deepest


def _reject_constant(name: str) -> Any:
    raise JsonError(f"{name} is not a JSON number")


def finite_float(text: str) -> float:
    """A JSON number's text as a float; :class:`JsonError` when it overflows to infinity."""
    value = float(text)
    if not math.isfinite(value):
        raise JsonError(f"number {text[:40]} is out of range")
    return value


_STRICT = json.JSONDecoder(parse_constant=_reject_constant, parse_float=finite_float)
"""Made once: ``json.loads`` with hooks builds a new decoder (and scanner) on every call."""


def within_depth(text: str, limit: int) -> bool:
    """True when ``text`` nests ``[``/``{`` at most ``limit`` deep. Exact, and cheap for short
    texts: the depth never exceeds the number of opening brackets, which ``str.count`` finds
    in C, so only a text with more than ``limit`` of them is walked character by character."""
    if text.count("[") + text.count("{") <= limit:
        return True
    return nesting_depth(text, limit) <= limit


def loads_strict(data: str | bytes, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """Parse ``data`` as RFC 8259 JSON with finite numbers and at most ``max_depth`` nesting."""
    try:
        text = data.decode() if isinstance(data, bytes) else data
    except UnicodeDecodeError:
        raise JsonError("body is not UTF-8") from None
    if not within_depth(text, max_depth):
        raise JsonTooDeep(f"JSON nested deeper than {max_depth} levels")
    if text.startswith("\ufeff"):  # what json.loads refuses before decoding
        raise JsonError("body is not JSON: Unexpected UTF-8 BOM (decode using utf-8-sig) at 0")
    try:
        return _STRICT.decode(text)
    except json.JSONDecodeError as exc:
        raise JsonError(f"body is not JSON: {exc.msg} at {exc.pos}") from None


def dumps_strict(obj: Any) -> str:
    """JSON text of ``obj``; a non-finite number is a bug and raises instead of going out."""
    return json.dumps(obj, allow_nan=False)


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


def is_loopback(host: str) -> bool:
    """True for exactly a loopback name or IP literal (see :func:`is_loopback_host`)."""
    return is_loopback_host(host)


def local_port(request: web.Request) -> int | None:
    """The port of the listener ``request`` came in on."""
    sockname = request.transport.get_extra_info("sockname") if request.transport else None
    return sockname[1] if isinstance(sockname, tuple) and len(sockname) >= 2 else None


def host_refusal(request: web.Request) -> str | None:
    """Why ``request``'s ``Host`` is not this loopback listener's own address, or None.

    Only ``localhost`` and loopback IP literals pass, and only with the port the request
    arrived on (an absent port means 80): a rebinding page sends its own name and port.
    """
    try:
        url = urlsplit(f"//{request.host}")
        port = url.port or 80
    except ValueError:
        return f"Host {request.host[:80]!r} is malformed"
    if not is_loopback(url.hostname or ""):
        return f"Host {request.host[:80]!r} is not a loopback name"
    if port != local_port(request):
        return f"Host {request.host[:80]!r} does not name this listener's port"
    return None


def new_token() -> str:
    """A fresh control token (256 bits)."""
    return secrets.token_urlsafe(32)


class ControlGuard:
    """The ``/control/*`` gate, as an aiohttp middleware (:meth:`middleware`)."""

    def __init__(self, token: str, require_token: bool) -> None:
        self.token = token
        self.require_token = require_token
        """True when bound beyond loopback: then the token, not the Host, proves the caller."""

    def refusal(self, request: web.Request) -> web.Response | None:
        """Why ``request`` may not drive the control API (an error answer), or None."""
        if not self.require_token and (why := host_refusal(request)) is not None:
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


# --- the HTTP listener's own log policy ----------------------------------------------------


class OneLineLog(logging.LoggerAdapter):  # type: ignore[type-arg]
    """aiohttp's server logger, minus the tracebacks it logs for what is not our bug.

    A malformed request or a peer that went away is one line (a bad request at WARNING, a
    lost connection at INFO); anything else is a real failure and keeps its traceback.
    """

    def exception(self, msg: object, *args: object, exc_info: Any = True, **kwargs: Any) -> None:
        exc = exc_info if isinstance(exc_info, BaseException) else None
        if isinstance(exc, ConnectionError):
            self.info("%s: connection lost (%s)", msg % args if args else msg, exc or "closed")
        elif isinstance(exc, HttpProcessingError):
            self.warning("%s: bad request: %s", msg % args if args else msg, exc.message.splitlines()[0][:200])
        else:
            self.error(msg, *args, exc_info=exc_info, **kwargs)


def server_logger() -> OneLineLog:
    """The logger to hand aiohttp's request handlers (``AppRunner(..., logger=...)``)."""
    return OneLineLog(logging.getLogger("aiohttp.server"), {})
