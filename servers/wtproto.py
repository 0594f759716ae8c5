"""The WebTransport wire format shared by the HTTP/3 listener and the client: no asyncio, no sockets.

The extended CONNECT ``/wt?since=N`` and its resume cursor, the ``{"ping": t}`` /
``{"pong": t}`` lines of the ping stream, the CLOSE_WEBTRANSPORT_SESSION capsule (encoder
and decoder side by side) and the newline-delimited JSON of the envelope stream.

WebTransport here is draft-ietf-webtrans-http3-02, which is what aioquic's H3Connection
speaks and what Chromium accepts with ``sec-webtransport-http3-draft: draft02``.
"""

from __future__ import annotations

import json
from urllib.parse import parse_qs

from aiohttp import web
from aioquic.buffer import Buffer, BufferReadError, encode_uint_var

from servers.http import parse_cursor
from servers.hub import Envelope

#: The path of the extended CONNECT that opens a session.
WT_PATH = "/wt"

#: draft-ietf-webtrans-http3-02 §5: CLOSE_WEBTRANSPORT_SESSION capsule (RFC 9297 §3.2
#: framing): a 32-bit application error code and a UTF-8 message of at most 1024 bytes.
CLOSE_WEBTRANSPORT_SESSION = 0x2843
MAX_CLOSE_MESSAGE_BYTES = 1024

#: Application error codes of our session closes (WebTransport leaves them to the app).
CLOSE_BAD_PING = 1
CLOSE_TOO_SLOW = 2
CLOSE_SERVER_ERROR = 3


class RequestError(Exception):
    """A request we answer with an HTTP status instead of a session."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def parse_connect(headers: list[tuple[bytes, bytes]]) -> int:
    """The resume cursor of a valid ``CONNECT /wt?since=N``; :class:`RequestError` otherwise."""
    fields = {name: value for name, value in headers if name.startswith(b":")}
    path, _, query = fields.get(b":path", b"").partition(b"?")
    if path != WT_PATH.encode():
        raise RequestError(404, f"no such path: {path[:60]!r}")
    # RFC 9220 §3 / draft-ietf-webtrans-http3-02 §3.2: an extended CONNECT, :protocol webtransport.
    if fields.get(b":method") != b"CONNECT" or fields.get(b":protocol") != b"webtransport":
        raise RequestError(400, "expected an extended CONNECT with :protocol webtransport")
    values = parse_qs(query.decode("utf-8", "replace"), keep_blank_values=True).get("since", [])
    if len(values) > 1:
        raise RequestError(400, "since given more than once")
    try:
        return parse_cursor(values[0] if values else None)
    except web.HTTPBadRequest as exc:
        raise RequestError(400, json.loads(exc.text or "{}").get("error", "bad since")) from None


def pong_for(line: bytes) -> bytes:
    """The answer to one ping line; ValueError when it is not ``{"ping": <number>}``."""
    try:
        stamp = json.loads(line)["ping"]
    except (ValueError, KeyError, TypeError):
        raise ValueError('expected {"ping": <number>}') from None
    if not isinstance(stamp, int | float) or isinstance(stamp, bool):
        raise ValueError('expected {"ping": <number>}')
    return json.dumps({"pong": stamp}).encode() + b"\n"


def close_capsule(code: int, reason: str) -> bytes:
    """A CLOSE_WEBTRANSPORT_SESSION capsule (draft-ietf-webtrans-http3-02 §5)."""
    message = reason.encode()[:MAX_CLOSE_MESSAGE_BYTES]
    value = code.to_bytes(4, "big") + message
    return encode_uint_var(CLOSE_WEBTRANSPORT_SESSION) + encode_uint_var(len(value)) + value


def parse_close_capsule(data: bytes) -> str | None:
    """The reason in a CLOSE_WEBTRANSPORT_SESSION capsule among ``data``, if one is complete."""
    buf = Buffer(data=data)
    while not buf.eof():
        try:
            kind, length = buf.pull_uint_var(), buf.pull_uint_var()
            value = buf.pull_bytes(length)
        except BufferReadError:
            return None
        if kind == CLOSE_WEBTRANSPORT_SESSION and length >= 4:
            code = int.from_bytes(value[:4], "big")
            message = value[4:].decode("utf-8", "replace")
            return f"{message} (code {code})" if message else f"code {code}"
    return None


def stream_lines(envelopes: list[Envelope]) -> bytes:
    """Newline-delimited JSON, from the envelopes' cached encodings."""
    return "".join(env.json + "\n" for env in envelopes).encode()
