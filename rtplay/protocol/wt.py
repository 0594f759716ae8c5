"""The WebTransport wire format both ends speak: no asyncio, no sockets.

The path of the extended CONNECT, the ``{"ping": t}`` / ``{"pong": t}`` lines of the ping
stream and the CLOSE_WEBTRANSPORT_SESSION capsule (encoder and decoder side by side). The
server's request parsing and stream framing are in :mod:`servers.quic.wtproto`.

WebTransport here is draft-ietf-webtrans-http3-02, which is what aioquic's H3Connection
speaks and what Chromium accepts with ``sec-webtransport-http3-draft: draft02``.
"""

from __future__ import annotations

from aioquic.buffer import Buffer, BufferReadError, encode_uint_var

from rtplay.protocol.strictjson import parse_ping, pong

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


def pong_for(line: bytes) -> bytes:
    """The answer to one ping line, strict JSON; :class:`~rtplay.protocol.strictjson.JsonError`
    (a ValueError) for anything but ``{"ping": <finite number>}``, whatever the bytes."""
    return pong(parse_ping(line)).encode() + b"\n"


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
