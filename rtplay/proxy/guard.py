"""Who may drive the proxy's API, and the strict JSON it reads.

The proxy's API can take any proxied app down, and it runs on a developer's machine while they
browse, so it follows the built-in server's control rules (servers/core/guard.py):

- ``Host`` must be exactly a loopback name with the port the request came in on (DNS
  rebinding: a page whose name resolves to 127.0.0.1 still sends its own name and port; the
  one rule both APIs share is :func:`rtplay.runtime.loopback.host_refusal`), unless the API is
  bound beyond loopback, where a token is required;
- no cross-site requests: an ``Origin`` that is not the API itself, or a ``Sec-Fetch-Site`` of
  ``cross-site``/``same-site``, is refused (Fetch standard §3.1; browsers send them, scripts and
  Toxiproxy clients do not), and no CORS headers are ever sent, so no preflight succeeds.

Unlike ``/control`` it does not insist on a JSON ``Content-Type``: Toxiproxy's documentation
drives it with ``curl -d`` (form-encoded), and the Origin/Sec-Fetch-Site check already refuses
the cross-site "simple" requests that rule exists for.
"""

from __future__ import annotations

import hmac
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web

from rtplay.runtime.loopback import host_refusal, listener_port
from rtplay.runtime.token import TOKEN_HEADER

log = logging.getLogger(__name__)

#: Largest API body read: a populate of a hundred proxies is a few KB.
MAX_API_BODY = 64 << 10

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class ApiError(Exception):
    """An API request that fails: its status and message, answered in Toxiproxy's shape."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def error_json(status: int, message: str) -> web.Response:
    """Toxiproxy's error shape: ``{"error": "...", "status": N}``."""
    return web.json_response({"error": message, "status": status}, status=status)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


async def read_json(request: web.Request) -> Any:
    """The body as strict JSON (no NaN/Infinity), at most :data:`MAX_API_BODY` bytes."""
    if request.content_length is not None and request.content_length > MAX_API_BODY:
        raise ApiError(413, f"body larger than {MAX_API_BODY} bytes")
    body = await request.content.read(MAX_API_BODY + 1)
    if len(body) > MAX_API_BODY:
        raise ApiError(413, f"body larger than {MAX_API_BODY} bytes")
    if not body.strip():
        return None
    try:
        return json.loads(body, parse_constant=_reject_constant)
    except RecursionError:
        raise ApiError(400, "bad request: JSON nested too deep") from None
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError, NaN
        raise ApiError(400, f"bad request: body is not JSON: {exc}") from None


class ApiGuard:
    """The API's gate, as an aiohttp middleware; it also maps :class:`ApiError` to JSON."""

    def __init__(self, token: str | None) -> None:
        self.token = token
        """Required when bound beyond loopback; None on loopback."""

    def refusal(self, request: web.Request) -> str | None:
        """Why ``request`` may not drive the API, or None."""
        if self.token is None and (why := host_refusal(request.host, listener_port(request.transport))) is not None:
            return why
        origin = request.headers.get("Origin")
        if origin is not None and urlsplit(origin).netloc != request.host:
            return f"cross-origin request from {origin[:80]!r} refused"
        if request.headers.get("Sec-Fetch-Site", "none") not in ("none", "same-origin"):
            return "cross-site request refused"
        if self.token is not None:
            given = request.headers.get(TOKEN_HEADER) or request.headers.get("Authorization", "").removeprefix("Bearer ")
            if not hmac.compare_digest(given.strip().encode(), self.token.encode()):
                return f"a token is required ({TOKEN_HEADER} header)"
        return None

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """Refuse unwelcome requests; answer :class:`ApiError` in Toxiproxy's shape."""
        if (refused := self.refusal(request)) is not None:
            log.warning("proxy API request refused: %s %s: %s", request.method, request.path, refused)
            return error_json(403, refused)
        try:
            return await handler(request)
        except ApiError as exc:
            return error_json(exc.status, exc.message)
        except web.HTTPException as exc:
            if exc.status >= 400:
                return error_json(exc.status, exc.reason.lower())
            raise
