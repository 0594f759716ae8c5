"""Message identity of a target's messages, as the user states it. Pure.

rtplay's own server puts ``seq`` and ``t`` in every envelope; a user's server (target mode,
``--target``) says what a message is in its own words, so the user tells rtplay where to
find them::

    --target TRANSPORT=URL           TRANSPORT := poll | longpoll | sse | ws
    --seq    TRANSPORT=SEQ           SEQ  := sse-id | json:PATH | none
    --time   TRANSPORT=TIME          TIME := json:PATH[:ms|s|iso] | none     (default unit ms)
    --resume TRANSPORT=TEMPLATE      a query with {seq}: '?since={seq}' (or '&after={seq}'),
                                     or a whole URL with {seq} (its path and query
                                     are used; its origin is the target's)
    PATH := KEY ("." KEY)*           a KEY of digits indexes a JSON array: data.items.0.id

SSE's seq defaults to the event's ``id:`` (what ``Last-Event-ID`` resumes from); every other
transport's defaults to none. A seq is a JSON integer or a string of decimal digits; a time
in ``ms``/``s`` is a JSON number since the Unix epoch, an ``iso`` time is an ISO 8601 string
with a UTC offset (a time without one is ambiguous and refused). With a seq, rtplay's
accounting model applies unchanged; with a time, one-way latency (the two clocks must agree:
same host, or synchronised); with neither, only arrivals and gaps in time are measured.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from urllib.parse import urlsplit

#: Transports target mode drives (rtplay's clients for them take any URL).
TARGET_TRANSPORTS = ("poll", "longpoll", "sse", "ws")

#: Largest message accepted from a target: a message is one event or one frame. A megabyte
#: is far beyond any real-time update yet small enough that a misbehaving server cannot
#: make the client hold much; a larger one is counted as ``oversized`` and not parsed.
MAX_MESSAGE_BYTES = 1 << 20

#: Deepest JSON path accepted: a path is typed by a user; 32 levels is beyond any real one.
MAX_PATH_KEYS = 32

#: The placeholder a resume template fills with the cursor.
SEQ_PLACEHOLDER = "{seq}"


class IdentityError(ValueError):
    """A ``--target`` / ``--seq`` / ``--time`` / ``--resume`` value that does not parse."""


class Unreadable(Enum):
    """Why a message could not be read (each is counted per target, never a crash)."""

    NOT_JSON = "not_json"
    """A JSON path was stated and the message is not JSON."""
    NO_SEQ = "no_seq"
    """The stated seq is missing or not an integer."""
    NO_TIME = "no_time"
    """The stated send time is missing or not a time."""
    OVERSIZED = "oversized"
    """Larger than :data:`MAX_MESSAGE_BYTES`."""


class UnreadableMessage(Exception):
    """One message that the stated identity cannot read."""

    def __init__(self, why: Unreadable, detail: str) -> None:
        self.why = why
        super().__init__(detail)


Path = tuple[str | int, ...]


def parse_path(text: str) -> Path:
    """``a.b.0.c`` → ``("a", "b", 0, "c")``; IdentityError for an empty key or too deep a path."""
    keys = text.split(".")
    if not text or any(not key for key in keys):
        raise IdentityError(f"bad JSON path {text!r}: expected KEY(.KEY)*, e.g. seq or data.id")
    if len(keys) > MAX_PATH_KEYS:
        raise IdentityError(f"JSON path {text!r} is deeper than {MAX_PATH_KEYS} keys")
    return tuple(int(key) if key.isascii() and key.isdigit() else key for key in keys)


def lookup(obj: object, path: Path) -> object:
    """The value at ``path`` in decoded JSON; KeyError when it is not there."""
    for key in path:
        if isinstance(key, int) and isinstance(obj, list) and key < len(obj):
            obj = obj[key]
        elif isinstance(obj, dict) and str(key) in obj:
            obj = obj[str(key)]
        else:
            raise KeyError(key)
    return obj


def show_path(path: Path) -> str:
    """A path as the user wrote it."""
    return ".".join(map(str, path))


@dataclass(frozen=True)
class SeqSource:
    """Where a message's seq is: the SSE event id, a JSON path, or nowhere."""

    kind: str
    """``sse-id``, ``json`` or ``none``."""
    path: Path = ()

    def __str__(self) -> str:
        return f"json:{show_path(self.path)}" if self.kind == "json" else self.kind


@dataclass(frozen=True)
class TimeSource:
    """Where a message's send time is, and its unit: ``ms``, ``s`` or ``iso``."""

    path: Path = ()
    """Empty: no time is stated."""
    unit: str = "ms"

    def __str__(self) -> str:
        return f"json:{show_path(self.path)}:{self.unit}" if self.path else "none"


NO_SEQ = SeqSource("none")
NO_TIME = TimeSource()
TIME_UNITS = ("ms", "s", "iso")


def parse_seq(text: str) -> SeqSource:
    """``sse-id`` | ``json:PATH`` | ``none``."""
    text = text.strip()
    if text in ("sse-id", "none"):
        return SeqSource(text)
    if text.startswith("json:"):
        return SeqSource("json", parse_path(text.removeprefix("json:")))
    raise IdentityError(f"bad seq {text!r}: expected sse-id, json:PATH or none")


def parse_time(text: str) -> TimeSource:
    """``json:PATH[:ms|s|iso]`` | ``none``."""
    text = text.strip()
    if text == "none":
        return NO_TIME
    if not text.startswith("json:"):
        raise IdentityError(f"bad time {text!r}: expected json:PATH[:ms|s|iso] or none")
    path, _, unit = text.removeprefix("json:").partition(":")
    unit = unit or "ms"
    if unit not in TIME_UNITS:
        raise IdentityError(f"bad time unit {unit!r} in {text!r}: expected ms, s or iso")
    return TimeSource(parse_path(path), unit)


@dataclass(frozen=True)
class ResumeTemplate:
    """How a reconnect asks the target for what follows ``seq``: a query or a whole URL."""

    template: str

    def url(self, base: str, seq: int | None) -> str:
        """The URL of a (re)connect: ``base`` as given until a seq is known."""
        if seq is None:
            return base
        filled = self.template.replace(SEQ_PLACEHOLDER, str(seq))
        if filled[0] in "?&":
            return base + ("&" if "?" in base else "?") + filled[1:]
        # A whole URL keeps the origin of ``base`` (the target, or the proxy in front of it).
        origin = urlsplit(base)
        return urlsplit(filled)._replace(scheme=origin.scheme, netloc=origin.netloc).geturl()

    def __str__(self) -> str:
        return self.template


def parse_resume(text: str) -> ResumeTemplate:
    """``?since={seq}``, ``&after={seq}`` or ``ws://host/path?from={seq}``."""
    if SEQ_PLACEHOLDER not in text:
        raise IdentityError(f"bad resume template {text!r}: it must contain {SEQ_PLACEHOLDER}")
    if text[0] not in "?&" and "://" not in text:
        raise IdentityError(f"bad resume template {text!r}: expected a query ('?since={{seq}}') or a whole URL")
    return ResumeTemplate(text)


def parse_target(text: str) -> tuple[str, str]:
    """``TRANSPORT=URL`` → (transport, url), the URL's scheme checked against the transport."""
    transport, eq, url = text.partition("=")
    transport, url = transport.strip(), url.strip()
    if not eq or not url:
        raise IdentityError(f"expected TRANSPORT=URL (e.g. sse=http://localhost:3000/events), got {text!r}")
    if transport not in TARGET_TRANSPORTS:
        raise IdentityError(f"{text!r}: target mode drives {', '.join(TARGET_TRANSPORTS)}, not {transport!r}")
    schemes = ("ws", "wss") if transport == "ws" else ("http", "https")
    parts = urlsplit(url)
    if parts.scheme not in schemes or not parts.hostname:
        raise IdentityError(f"{transport} target {url!r}: expected a {' or '.join(schemes)}:// URL with a host")
    return transport, url


def parse_assignment(text: str, what: str) -> tuple[str, str]:
    """``TRANSPORT=VALUE`` of ``--seq``/``--time``/``--resume`` (``what`` names the flag)."""
    transport, eq, value = text.partition("=")
    transport = transport.strip()
    if not eq or not value.strip():
        raise IdentityError(f"{what}: expected TRANSPORT=VALUE, got {text!r}")
    if transport not in TARGET_TRANSPORTS:
        raise IdentityError(f"{what} {text!r}: unknown target transport {transport!r}: "
                            f"choose from {', '.join(TARGET_TRANSPORTS)}")
    return transport, value


@dataclass(frozen=True)
class Identified:
    """What a message says about itself."""

    seq: int | None
    sent_ms: float | None
    """Send time, Unix epoch milliseconds."""


@dataclass(frozen=True)
class Identity:
    """One target's stated identity: where its seq and its send time are, and how it resumes."""

    seq: SeqSource = NO_SEQ
    time: TimeSource = NO_TIME
    resume: ResumeTemplate | None = None

    @property
    def needs_json(self) -> bool:
        """A stated path reads the message as JSON."""
        return self.seq.kind == "json" or bool(self.time.path)

    def identify(self, message: str | bytes, event_id: str | None = None) -> Identified:
        """Read one message (an SSE event's data with its id, or a frame, or a batch item's
        JSON text); :class:`UnreadableMessage` when the stated identity is not in it."""
        if len(message) > MAX_MESSAGE_BYTES:
            raise UnreadableMessage(Unreadable.OVERSIZED, f"{len(message)} bytes > {MAX_MESSAGE_BYTES}")
        obj: object = None
        if self.needs_json:
            try:
                obj = json.loads(message)
            except (ValueError, RecursionError):
                raise UnreadableMessage(Unreadable.NOT_JSON, f"not JSON: {str(message)[:60]!r}") from None
        return self.identify_decoded(obj, event_id)

    def identify_decoded(self, obj: object, event_id: str | None = None) -> Identified:
        """Like :meth:`identify`, for a message already decoded (an item of a JSON batch)."""
        return Identified(self._seq(obj, event_id), self._time(obj))

    def _seq(self, obj: object, event_id: str | None) -> int | None:
        if self.seq.kind == "none":
            return None
        if self.seq.kind == "sse-id":
            value: object = event_id
            where = "the event id"
        else:
            where = show_path(self.seq.path)
            try:
                value = lookup(obj, self.seq.path)
            except KeyError:
                raise UnreadableMessage(Unreadable.NO_SEQ, f"no {where} in the message") from None
        seq = as_seq(value)
        if seq is None:
            raise UnreadableMessage(Unreadable.NO_SEQ, f"{where} is not an integer: {str(value)[:40]!r}")
        return seq

    def _time(self, obj: object) -> float | None:
        if not self.time.path:
            return None
        where = show_path(self.time.path)
        try:
            value = lookup(obj, self.time.path)
        except KeyError:
            raise UnreadableMessage(Unreadable.NO_TIME, f"no {where} in the message") from None
        sent = as_epoch_ms(value, self.time.unit)
        if sent is None:
            raise UnreadableMessage(Unreadable.NO_TIME, f"{where} is not a {self.time.unit} time: {str(value)[:40]!r}")
        return sent


def as_seq(value: object) -> int | None:
    """A JSON integer or a string of decimal digits as a seq; None otherwise."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and 0 < len(value) <= 20 and value.isascii() and value.isdigit():
        return int(value)
    return None


def as_epoch_ms(value: object, unit: str) -> float | None:
    """A send time in Unix epoch milliseconds; None when ``value`` is not one in ``unit``."""
    if unit == "iso":
        if not isinstance(value, str):
            return None
        try:
            when = datetime.fromisoformat(value)
        except ValueError:
            return None
        if when.tzinfo is None:  # whose clock? refuse rather than guess
            return None
        return when.timestamp() * 1000
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value) * (1000 if unit == "s" else 1)
