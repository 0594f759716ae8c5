"""The control event stream (``GET /control/events``) as typed events, encoded and decoded here
only: the server publishes these, the session (or any script) follows them. Pure.

On the wire each event is one JSON object per line with a ``type``; every other key is a field
of the event's dataclass below. A follower that meets an unknown ``type`` skips it (a newer
server may say more); a known type with a malformed field is a :class:`ControlEventError`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, TypeAlias

JsonObject: TypeAlias = dict[str, Any]


class ControlEventError(ValueError):
    """An event of a known type whose fields are not what that type carries."""


@dataclass(frozen=True)
class Hello:
    """First on every stream: the server's full status (endpoints, faults, rate, published)."""

    status: JsonObject


@dataclass(frozen=True)
class FaultChanged:
    """A fault started or ended (whoever asked for it)."""

    what: Literal["started", "ended"]
    fault: JsonObject
    """The fault as :meth:`rtplay.protocol.faults.Fault.to_json` writes it."""
    published: int
    """The hub's last seq at that moment: what was published before the fault, and what after."""


@dataclass(frozen=True)
class PublisherFigures:
    """The publisher's figures, every ``PUBLISHER_EVERY_S`` while the server runs."""

    published: int
    rate: float
    replay_from: int
    """The oldest seq the server can still replay."""
    health: JsonObject | None = None
    """The server's loop lag and publisher slip (:class:`rtplay.runtime.health.SideHealth`)."""


@dataclass(frozen=True)
class RateChanged:
    """The publish rate changed (``POST /control/rate``)."""

    rate: float
    published: int
    replay_from: int


@dataclass(frozen=True)
class ListenersChanged:
    """An outage or crash took every listener down, or they came back."""

    up: bool


@dataclass(frozen=True)
class BufferReset:
    """Something was lost on the server's side: a crash forgot the replay buffer (``first`` is
    the oldest seq left), or ``cut`` subscriptions were closed as too slow."""

    cause: Literal["crash", "too_slow"]
    first: int | None = None
    cut: int = 0


@dataclass(frozen=True)
class CountersReset:
    """Someone asked (``POST /control/reset``) that every follower zero its counters."""


@dataclass(frozen=True)
class Bye:
    """The stream ends: the server stops, or this follower fell too far behind."""

    reason: str


ControlEvent: TypeAlias = (
    Hello | FaultChanged | PublisherFigures | RateChanged | ListenersChanged | BufferReset | CountersReset | Bye
)

_TYPES: dict[str, type[ControlEvent]] = {
    "hello": Hello,
    "fault": FaultChanged,
    "publisher": PublisherFigures,
    "rate": RateChanged,
    "listeners": ListenersChanged,
    "reset": BufferReset,
    "counters_reset": CountersReset,
    "bye": Bye,
}
_NAMES: dict[type[ControlEvent], str] = {cls: name for name, cls in _TYPES.items()}


def encode(event: ControlEvent) -> JsonObject:
    """The event as its JSON object (``type`` first, ``None`` fields left out)."""
    out: JsonObject = {"type": _NAMES[type(event)]}
    out.update((k, v) for k, v in vars(event).items() if v is not None)
    return out


def decode(obj: JsonObject) -> ControlEvent | None:
    """The event ``obj`` encodes; None for an unknown ``type`` (a newer server's event)."""
    name = obj.get("type")
    cls = _TYPES.get(name) if isinstance(name, str) else None
    if cls is None:
        return None
    try:
        return _DECODERS[cls](obj)
    except (KeyError, TypeError, ValueError) as exc:
        raise ControlEventError(f"malformed {name!r} event: {exc}") from None


def _int(obj: JsonObject, key: str) -> int:
    value = obj[key]
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{key} must be an integer, got {value!r}")
    return value


def _float(obj: JsonObject, key: str) -> float:
    value = obj[key]
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"{key} must be a finite number, got {value!r}")
    return float(value)


def _object(obj: JsonObject, key: str) -> JsonObject:
    value = obj[key]
    if not isinstance(value, dict):
        raise ValueError(f"{key} must be an object, got {type(value).__name__}")
    return value


def _fault(obj: JsonObject) -> FaultChanged:
    what = obj["what"]
    if what not in ("started", "ended"):
        raise ValueError(f"what must be 'started' or 'ended', got {what!r}")
    return FaultChanged(what=what, fault=_object(obj, "fault"), published=_int(obj, "published"))


def _reset(obj: JsonObject) -> BufferReset:
    cause = obj["cause"]
    if cause not in ("crash", "too_slow"):
        raise ValueError(f"cause must be 'crash' or 'too_slow', got {cause!r}")
    first = _int(obj, "first") if obj.get("first") is not None else None
    return BufferReset(cause=cause, first=first, cut=_int(obj, "cut") if "cut" in obj else 0)


_DECODERS: dict[type[ControlEvent], Callable[[JsonObject], ControlEvent]] = {
    Hello: lambda o: Hello(status=_object(o, "status")),
    FaultChanged: _fault,
    PublisherFigures: lambda o: PublisherFigures(
        published=_int(o, "published"), rate=_float(o, "rate"), replay_from=_int(o, "replay_from"),
        health=_object(o, "health") if o.get("health") is not None else None,
    ),
    RateChanged: lambda o: RateChanged(rate=_float(o, "rate"), published=_int(o, "published"),
                                       replay_from=_int(o, "replay_from")),
    ListenersChanged: lambda o: ListenersChanged(up=bool(o["up"])),
    BufferReset: _reset,
    CountersReset: lambda o: CountersReset(),
    Bye: lambda o: Bye(reason=str(o["reason"])),
}

