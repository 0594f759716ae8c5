"""The control words that travel beside envelopes on the message transports (ws, the wt
stream, the rtc channels), defined once for both ends, strict JSON both ways. Pure.

* ``{"ping": t}`` / ``{"pong": t}`` — a round-trip probe; the pong echoes the ping's number;
* ``{"live": L}`` — where this connection's live traffic starts (the unreliable channel
  carries seqs from ``L`` on);
* ``{"closing": reason}`` — the server says why it ends the stream, before it does;
* ``{"reset": {...}}`` — see :mod:`rtplay.protocol.envelope`.
"""

from __future__ import annotations

from rtplay.protocol.strictjson import JsonError, dumps_strict, loads_strict

PING = "ping"
PONG = "pong"
LIVE = "live"
CLOSING = "closing"

CONTROL_WORDS = frozenset({PING, PONG, LIVE, CLOSING})
"""Keys that make a message a control word rather than an envelope."""


def parse_ping(line: str | bytes | bytearray) -> int | float:
    """The stamp of one ``{"ping": <number>}`` message (wt ping line, rtc channel message).

    The stamp is returned as sent (an integer stays exact, as the WebSocket pong echoes it);
    anything else raises :class:`~rtplay.protocol.strictjson.JsonError`, whatever the input:
    deep nesting, 5,000-digit integers, ``NaN``, ``Infinity``, another shape.
    """
    try:
        payload = loads_strict(line)
    except JsonError as exc:
        raise type(exc)(f'expected {{"ping": <number>}}: {exc}') from None
    stamp = payload.get(PING) if isinstance(payload, dict) else None
    if not isinstance(stamp, int | float) or isinstance(stamp, bool):
        raise JsonError('expected {"ping": <number>}')
    return stamp


def ping(stamp: float) -> str:
    """``{"ping": stamp}``."""
    return dumps_strict({PING: stamp})


def pong(stamp: float) -> str:
    """``{"pong": stamp}``: the answer to a ping carrying ``stamp``."""
    return dumps_strict({PONG: stamp})


def live(first: int) -> str:
    """``{"live": first}``."""
    return dumps_strict({LIVE: first})


def closing(reason: str) -> str:
    """``{"closing": reason}``."""
    return dumps_strict({CLOSING: reason})


def is_control(payload: object) -> bool:
    """True when a decoded message is one of the control words, not an envelope."""
    return isinstance(payload, dict) and not CONTROL_WORDS.isdisjoint(payload)


def number_of(payload: object, word: str) -> float | None:
    """The number a ``{word: <number>}`` message carries (a ping's or pong's stamp); None when
    ``payload`` is not that word with a number (booleans are not numbers here)."""
    value = payload.get(word) if isinstance(payload, dict) else None
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return value
