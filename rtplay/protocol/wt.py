"""The WebTransport wire format both ends speak: no asyncio, no sockets.

The path of the extended CONNECT, the ``{"ping": t}`` / ``{"pong": t}`` lines of the ping
stream and the CLOSE_WEBTRANSPORT_SESSION capsule (encoder and decoder side by side). The
server's request parsing and stream framing are in :mod:`servers.quic.wtproto`.

WebTransport here is draft-ietf-webtrans-http3-02, which is what aioquic's H3Connection
speaks and what Chromium accepts with ``sec-webtransport-http3-draft: draft02``.
"""

from __future__ import annotations

from rtplay.protocol.messages import parse_ping, pong

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


def encode_varint(value: int) -> bytes:
    """RFC 9000 §16: a variable-length integer (1, 2, 4 or 8 bytes; the top two bits say which)."""
    for size, prefix in ((1, 0x00), (2, 0x40), (4, 0x80), (8, 0xC0)):
        if value < 1 << (8 * size - 2):
            raw = bytearray(value.to_bytes(size, "big"))
            raw[0] |= prefix
            return bytes(raw)
    raise ValueError(f"{value} does not fit a QUIC variable-length integer")


def decode_varint(data: bytes, offset: int) -> tuple[int, int] | None:
    """RFC 9000 §16: the integer at ``offset`` and the offset after it; None when incomplete."""
    if offset >= len(data):
        return None
    size = 1 << (data[offset] >> 6)
    if offset + size > len(data):
        return None
    value = int.from_bytes(data[offset:offset + size], "big") & ((1 << (8 * size - 2)) - 1)
    return value, offset + size


def pong_for(line: bytes) -> bytes:
    """The answer to one ping line, strict JSON; :class:`~rtplay.protocol.strictjson.JsonError`
    (a ValueError) for anything but ``{"ping": <finite number>}``, whatever the bytes."""
    return pong(parse_ping(line)).encode() + b"\n"


def close_capsule(code: int, reason: str) -> bytes:
    """A CLOSE_WEBTRANSPORT_SESSION capsule (draft-ietf-webtrans-http3-02 §5)."""
    message = reason.encode()[:MAX_CLOSE_MESSAGE_BYTES]
    value = code.to_bytes(4, "big") + message
    return encode_varint(CLOSE_WEBTRANSPORT_SESSION) + encode_varint(len(value)) + value


def parse_close_capsule(data: bytes) -> str | None:
    """The reason in a CLOSE_WEBTRANSPORT_SESSION capsule among ``data``, if one is complete."""
    offset = 0
    while offset < len(data):
        kind = decode_varint(data, offset)
        length = decode_varint(data, kind[1]) if kind else None
        if kind is None or length is None or length[1] + length[0] > len(data):
            return None
        value, offset = data[length[1]:length[1] + length[0]], length[1] + length[0]
        if kind[0] == CLOSE_WEBTRANSPORT_SESSION and length[0] >= 4:
            code = int.from_bytes(value[:4], "big")
            message = value[4:].decode("utf-8", "replace")
            return f"{message} (code {code})" if message else f"code {code}"
    return None
