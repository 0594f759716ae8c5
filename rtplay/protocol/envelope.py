"""The envelope every transport carries and the reset signal that precedes a gap. Pure.

An envelope is ``{"seq": 42, "t": 1764270000123.456, "data": "..."}``: ``seq`` is 1-based
and strictly increasing per server, ``t`` the send time in Unix epoch milliseconds. When a
client resumes from a cursor the server no longer buffers, the server says so explicitly
before the backlog — ``{"reset": {"since": n, "first": f}}`` on the JSON transports (poll and
long-poll carry it as the batch's ``"reset"`` member), an ``event: reset`` with the same body
on SSE — so a gap is never silent loss. The server encodes here, the clients parse here.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from json.encoder import encode_basestring_ascii

RESET = "reset"
"""The reset signal's key in a JSON message, and its event type on SSE."""


class ProtocolError(Exception):
    """The peer sent something that is not our protocol; ends that one connection."""


@dataclass(frozen=True, slots=True)
class Envelope:
    """One published message."""

    seq: int
    """1-based, strictly increasing per hub."""
    t: float
    """Server send time, Unix epoch milliseconds (µs precision)."""
    data: str
    """The payload."""
    json: str = field(compare=False)
    """The envelope encoded once, shared by every transport that sends it."""


def make_envelope(seq: int, t: float, data: str) -> Envelope:
    """An envelope with its JSON encoding, made once for every transport and subscriber."""
    t = round(t * 1000) / 1000  # to the µs, as round(t, 3) but without its decimal algorithm (2 µs)
    # What json.dumps(..., separators=(",", ":")) gives, without its generic encoder on the
    # publisher's path: an int's and a finite float's repr are their JSON text.
    return Envelope(seq, t, data, f'{{"seq":{seq},"t":{t!r},"data":{encode_basestring_ascii(data)}}}')


@dataclass(frozen=True, slots=True)
class Reset:
    """The resume point has been evicted: seqs ``since + 1 .. first - 1`` are gone for good."""

    since: int
    """The cursor the client asked to resume from."""
    first: int
    """The oldest seq still available (the next one the client will get)."""

    @property
    def lost(self) -> int:
        """How many messages the client can never get."""
        return max(0, self.first - self.since - 1)

    def to_json(self) -> dict[str, int]:
        """The body of the reset signal."""
        return {"since": self.since, "first": self.first}

    def message(self) -> str:
        """The reset signal as one JSON message (ws, wt stream, rtc reliable)."""
        return json.dumps({RESET: self.to_json()})


@dataclass(frozen=True, slots=True)
class Received:
    """A decoded envelope: only what accounting needs."""

    seq: int
    t: float


def parse_envelope(obj: object) -> Received:
    """Validate a decoded envelope ``{"seq": int >= 1, "t": float, "data": str}``."""
    if not isinstance(obj, dict):
        raise ProtocolError(f"envelope is not an object: {_head(obj)!r}")
    seq, t = obj.get("seq"), obj.get("t")
    if not isinstance(seq, int) or isinstance(seq, bool) or seq < 1:
        raise ProtocolError(f"envelope has no valid seq: {_head(obj)!r}")
    if not isinstance(t, int | float) or isinstance(t, bool):
        raise ProtocolError(f"envelope has no valid t: {_head(obj)!r}")
    try:
        stamp = float(t)  # a 310-digit integer overflows a double
    except OverflowError:
        stamp = math.inf
    if not math.isfinite(stamp):
        raise ProtocolError(f"envelope t is not a finite time: {_head(obj)!r}")
    return Received(seq, stamp)


def _head(obj: object) -> str:
    """The start of ``obj``'s text for an error message (a huge int's ``str`` raises past
    Python's digit limit, so it is cut short instead)."""
    try:
        return str(obj)[:60]
    except ValueError:
        return f"<{type(obj).__name__} too large to show>"


def decode_json(text: str | bytes) -> object:
    """Decode one JSON message; :class:`ProtocolError` for anything that is not JSON we accept."""
    try:
        return json.loads(text)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ProtocolError(f"not JSON: {exc}") from None
    except RecursionError:  # absurdly nested input: refuse it, don't crash the client
        raise ProtocolError("not JSON we accept: nested too deeply") from None
