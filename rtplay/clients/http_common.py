"""Helpers shared by the HTTP/1.1 clients (poll, long-poll, SSE)."""

from __future__ import annotations

import ssl

import aiohttp
import httpx

from rtplay.clients.base import Client, OfflineError
from rtplay.clients.core import reset_signal
from rtplay.clients.keepalive import ServerClosedError
from rtplay.model.http1 import Answer
from rtplay.model.oserrors import describe_os_error
from rtplay.protocol.envelope import ProtocolError, decode_json, parse_envelope

#: Connect timeout of every HTTP client: on loopback a connect either succeeds at once or is
#: refused; a longer wait would only hide an outage.
CONNECT_TIMEOUT_S = 2.0


#: The HTTP transports speak plain HTTP on loopback. httpx otherwise builds a verifying SSL
#: context (loading the system CA store, ~50 ms of blocked event loop) for every client.
_PLAIN_HTTP_ONLY = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)


def make_http_client(read_timeout: float | None) -> httpx.AsyncClient:
    """An httpx client that never talks to a proxy (loopback only) and keeps one connection."""
    return httpx.AsyncClient(
        timeout=httpx.Timeout(read_timeout, connect=CONNECT_TIMEOUT_S),
        limits=httpx.Limits(max_connections=1, max_keepalive_connections=1),
        trust_env=False,
        verify=_PLAIN_HTTP_ONLY,
    )


def make_aiohttp_session(read_timeout: float) -> aiohttp.ClientSession:
    """An aiohttp session like :func:`make_http_client`, for target mode's long-poll (a request
    per answer): a request through aiohttp costs a fraction of one through httpx (anyio and
    sniffio per call). rtplay's own long-poll goes leaner still (:mod:`rtplay.clients.keepalive`)."""
    return aiohttp.ClientSession(
        timeout=aiohttp.ClientTimeout(total=None, connect=CONNECT_TIMEOUT_S, sock_read=read_timeout),
        connector=aiohttp.TCPConnector(limit=1),
        trust_env=False,
    )


Response = httpx.Response | aiohttp.ClientResponse | Answer


class StatusError(ProtocolError):
    """The server answered with a status the client does not accept."""

    def __init__(self, response: Response) -> None:
        if isinstance(response, Answer):
            self.status, retry_after = response.status, response.retry_after
        else:
            self.status = response.status_code if isinstance(response, httpx.Response) else response.status
            retry_after = response.headers.get("Retry-After")
        self.retry_after = parse_retry_after(retry_after)
        super().__init__(f"HTTP {self.status}")


def parse_retry_after(value: str | None) -> float | None:
    """RFC 9110 §10.2.3 delay-seconds form only (our server sends no HTTP-date)."""
    if value and value.isascii() and value.isdigit():
        return float(value)
    return None


def header_bytes(response: httpx.Response | aiohttp.ClientResponse) -> int:
    """Approximate size of the status line and headers as they were on the wire."""
    raw = response.headers.raw if isinstance(response, httpx.Response) else response.raw_headers
    return 17 + sum(len(k) + len(v) + 4 for k, v in raw) + 2


def describe_request_error(exc: BaseException) -> str:
    """The short reason a pane shows for a failed request."""
    if isinstance(exc, OfflineError):
        return str(exc)
    if isinstance(exc, httpx.ConnectError | aiohttp.ClientConnectorError):
        return "connection refused"
    if isinstance(exc, ServerClosedError):
        return describe_os_error(exc) or str(exc)
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return "server closed the connection"
    if isinstance(exc, TimeoutError):  # aiohttp's timeouts, e.g. ServerTimeoutError
        return f"timed out ({type(exc).__name__})"
    if isinstance(exc, aiohttp.ClientOSError | aiohttp.ClientPayloadError):
        return "connection reset"
    if isinstance(exc, httpx.RemoteProtocolError):
        return "server closed the connection"
    if isinstance(exc, httpx.ReadError):
        return "connection reset"
    if isinstance(exc, httpx.TimeoutException):
        return f"timed out ({type(exc).__name__})"
    if isinstance(exc, StatusError):
        return f"HTTP {exc.status}"
    if isinstance(exc, ProtocolError):
        return f"bad response: {exc}"
    return describe_os_error(exc) or f"{type(exc).__name__}: {exc}"


def apply_batch(client: Client, body: bytes, received_ms: float) -> int:
    """Account a /poll or /longpoll body; return the server's ``last``."""
    payload = decode_json(body)
    if not isinstance(payload, dict) or not isinstance(payload.get("messages"), list):
        raise ProtocolError('expected {"messages": [...], "last": N}')
    first = reset_signal(payload)  # strict: a malformed reset ends the request, never ignored
    if first is not None:
        client.on_reset(first)
    for raw in payload["messages"]:
        client.on_envelope(parse_envelope(raw), received_ms)
    last = payload.get("last")
    return last if isinstance(last, int) else client.cursor


HTTP_ERRORS = (httpx.HTTPError, aiohttp.ClientError, TimeoutError, ProtocolError, OSError)
"""What a failed request can raise; every one of them ends only that request."""
