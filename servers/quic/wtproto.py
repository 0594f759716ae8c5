"""The server's side of the WebTransport wire format: no asyncio, no sockets.

The extended CONNECT ``/wt?since=N`` and its resume cursor, and the newline-delimited JSON
of the envelope stream. What the client shares (the path, the ping lines, the close capsule)
is in :mod:`rtplay.protocol.wt`.
"""

from __future__ import annotations

from urllib.parse import parse_qs

from rtplay.protocol.envelope import Envelope
from rtplay.protocol.wt import WT_PATH
from servers.core.cursor import parse_cursor


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
    except ValueError as exc:
        raise RequestError(400, str(exc)) from None


def stream_lines(envelopes: list[Envelope]) -> bytes:
    """Newline-delimited JSON, from the envelopes' cached encodings."""
    return "".join(env.json + "\n" for env in envelopes).encode()
