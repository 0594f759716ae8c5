"""Toxics: what a fault proxy does to the traffic it carries, in Toxiproxy's JSON shape. Pure.

A toxic is ``{"name", "type", "stream", "toxicity", "attributes"}`` exactly as Toxiproxy's API
speaks it (github.com/Shopify/toxiproxy, README "Toxics"), so its clients drive rtplay unchanged.
Two families share that shape:

- Toxiproxy's byte-level toxics, with Toxiproxy's attributes and units: ``latency`` (latency,
  jitter: ms), ``bandwidth`` (rate: KB/s), ``slow_close`` (delay: ms), ``timeout`` (timeout: ms,
  0 = never), ``reset_peer`` (timeout: ms), ``slicer`` (average_size, size_variation: bytes;
  delay: µs), ``limit_data`` (bytes).
- rtplay's protocol-aware faults, which a TCP proxy cannot do because it does not know where one
  SSE event or WebSocket message ends: ``drop``, ``stall``, ``delay`` (delay, jitter: ms),
  ``error`` (status, retry_after: s), ``outage`` (seconds, 0 = until removed), ``throttle``
  (rate: KB/s), ``loss`` / ``duplicate`` / ``reorder`` (percent). Each takes a ``kind``
  attribute: ``http``, ``sse``, ``ws`` or ``all``.

``stream`` is the direction: ``downstream`` (upstream server → client, the default) or
``upstream``. ``toxicity`` is the probability, drawn once per connection, that a connection gets
the toxic (Toxiproxy: "Percentage of connections the toxic will affect").
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from rtplay.protocol.faults import ERROR_CODES

DOWNSTREAM = "downstream"
UPSTREAM = "upstream"
STREAMS = (DOWNSTREAM, UPSTREAM)

#: The kinds of traffic the proxy tells apart, and ``all``.
KINDS = ("all", "http", "sse", "ws")

#: Toxiproxy's toxic types and their attributes with defaults (all integers in Toxiproxy).
TOXIPROXY_TYPES: dict[str, dict[str, float]] = {
    "latency": {"latency": 0, "jitter": 0},
    "bandwidth": {"rate": 0},
    "slow_close": {"delay": 0},
    "timeout": {"timeout": 0},
    "reset_peer": {"timeout": 0},
    "slicer": {"average_size": 0, "size_variation": 0, "delay": 0},
    "limit_data": {"bytes": 0},
}

#: rtplay's protocol-aware toxic types and their numeric attributes with defaults (plus ``kind``).
RTPLAY_TYPES: dict[str, dict[str, float]] = {
    "drop": {},
    "stall": {},
    "delay": {"delay": 0, "jitter": 0},
    "error": {"status": 503, "retry_after": 1},
    "outage": {"seconds": 0},
    "throttle": {"rate": 0},
    "loss": {"percent": 0},
    "duplicate": {"percent": 0},
    "reorder": {"percent": 100},
}

TYPES: dict[str, dict[str, float]] = {**TOXIPROXY_TYPES, **RTPLAY_TYPES}

#: Message-level types: they act per SSE event or WebSocket message, never on plain requests.
MESSAGE_TYPES = frozenset({"loss", "duplicate", "reorder"})

#: Largest number any attribute may hold: a day in ms, 1 GB/s in KB/s, 1 GB of bytes. Bigger
#: values only overflow timers and say nothing a smaller one would not.
MAX_ATTRIBUTE = 1e9

#: Attributes that are percentages.
_PERCENT = {"percent"}

#: Longest toxic or proxy name: names travel in URLs and panes.
MAX_NAME_CHARS = 128


class ToxicError(ValueError):
    """A toxic that makes no sense; the message says what (Toxiproxy answers these with 400)."""


@dataclass(frozen=True)
class Toxic:
    """One toxic on a proxy."""

    name: str
    type: str
    stream: str = DOWNSTREAM
    """``downstream`` (server → client) or ``upstream`` (client → server)."""
    toxicity: float = 1.0
    """Probability (0-1) that a connection gets this toxic, drawn once per connection."""
    attributes: dict[str, float] = field(default_factory=dict)
    """Numeric attributes of the type (every one present, defaults filled in)."""
    kind: str = "all"
    """rtplay types only: the traffic it acts on (``http``, ``sse``, ``ws``, ``all``)."""

    def applies(self, kind: str, stream: str) -> bool:
        """Whether this toxic acts on ``kind`` traffic flowing in ``stream``."""
        return self.stream == stream and self.kind in ("all", kind)

    def attr(self, name: str) -> float:
        return self.attributes[name]

    def to_json(self) -> dict[str, Any]:
        """Toxiproxy's JSON shape (``kind`` rides in the attributes of rtplay's types)."""
        attributes: dict[str, Any] = {k: _plain(v) for k, v in self.attributes.items()}
        if self.type in RTPLAY_TYPES:
            attributes["kind"] = self.kind
        return {
            "name": self.name, "type": self.type, "stream": self.stream,
            "toxicity": self.toxicity, "attributes": attributes,
        }

    def describe(self) -> str:
        """One line for panes and logs, e.g. ``latency 200ms±0 downstream``."""
        values = " ".join(f"{k}={_plain(v)}" for k, v in self.attributes.items())
        scope = f" on {self.kind}" if self.type in RTPLAY_TYPES else ""
        chance = "" if self.toxicity >= 1 else f" ({self.toxicity:.0%} of connections)"
        return f"{self.name}: {self.type} {values}{scope} {self.stream}{chance}".replace("  ", " ")


def _plain(value: float) -> float | int:
    return int(value) if float(value).is_integer() else value


def check_name(name: object, what: str = "name") -> str:
    """A proxy or toxic name: a non-empty string without ``/``, at most :data:`MAX_NAME_CHARS`."""
    if not isinstance(name, str) or not name or "/" in name or len(name) > MAX_NAME_CHARS:
        raise ToxicError(f"{what} must be a non-empty string without '/' of at most {MAX_NAME_CHARS} characters")
    return name


def _number(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ToxicError(f"attribute {name!r} must be a finite number, got {value!r}")
    limit = 100.0 if name in _PERCENT else MAX_ATTRIBUTE
    if not 0 <= value <= limit:
        raise ToxicError(f"attribute {name!r} must be 0-{limit:g}, got {value:g}")
    return float(value)


def parse_attributes(type_: str, given: object, base: dict[str, float] | None = None,
                     base_kind: str = "all") -> tuple[dict[str, float], str]:
    """Validated attributes of a ``type_`` toxic: ``given`` over ``base`` (or the defaults)."""
    if given is None:
        given = {}
    if not isinstance(given, dict):
        raise ToxicError("attributes must be a JSON object")
    values = dict(TYPES[type_] if base is None else base)
    kind = base_kind
    for name, value in given.items():
        if name == "kind" and type_ in RTPLAY_TYPES:
            if value not in KINDS:
                raise ToxicError(f"attribute 'kind' must be one of {', '.join(KINDS)}, got {value!r}")
            kind = str(value)
        elif name in TYPES[type_]:
            values[name] = _number(name, value)
        else:
            known = ", ".join([*TYPES[type_], *(["kind"] if type_ in RTPLAY_TYPES else [])]) or "none"
            raise ToxicError(f"unknown attribute {name!r} for {type_} (known: {known})")
    if type_ == "error" and int(values["status"]) not in ERROR_CODES | {502}:
        raise ToxicError(f"error status must be one of {sorted(ERROR_CODES)}, got {values['status']:g}")
    return values, kind


def parse_toxic(body: object) -> Toxic:
    """A new toxic from a ``POST /proxies/{name}/toxics`` body; :class:`ToxicError` says why not."""
    if not isinstance(body, dict):
        raise ToxicError("body must be a JSON object")
    type_ = body.get("type")
    if type_ not in TYPES:
        raise ToxicError(f"invalid toxic type {type_!r}: expected one of {', '.join(TYPES)}")
    stream = body.get("stream", DOWNSTREAM) or DOWNSTREAM
    if stream not in STREAMS:
        raise ToxicError(f"stream must be upstream or downstream, got {stream!r}")
    name = check_name(body.get("name") or f"{type_}_{stream}", "toxic name")
    toxicity = _toxicity(body.get("toxicity", 1.0))
    attributes, kind = parse_attributes(type_, body.get("attributes"))
    return Toxic(name, type_, stream, toxicity, attributes, kind)


def update_toxic(toxic: Toxic, body: object) -> Toxic:
    """``toxic`` changed by a ``POST /proxies/{name}/toxics/{toxic}`` body (attributes, toxicity)."""
    if not isinstance(body, dict):
        raise ToxicError("body must be a JSON object")
    toxicity = _toxicity(body["toxicity"]) if "toxicity" in body else toxic.toxicity
    attributes, kind = parse_attributes(toxic.type, body.get("attributes"), toxic.attributes, toxic.kind)
    return Toxic(toxic.name, toxic.type, toxic.stream, toxicity, attributes, kind)


def _toxicity(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
        raise ToxicError(f"toxicity must be a number 0-1, got {value!r}")
    return float(value)
