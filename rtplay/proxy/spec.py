"""rtplay's ``--fault`` grammar at a proxy: a spec becomes a timed toxic. Pure.

    SPEC  := FAULT [ ":" KIND [ "/" STREAM ] ]
    FAULT := rtplay's fault spec without its scope (see ``rtplay run --help``)
    KIND  := all | http | sse | ws            (default all)
    STREAM := downstream | upstream | down | up   (default downstream)

Faults that make sense at a proxy: drop, stall, delay (± jitter), error, outage, throttle, and
per SSE event or WS message loss, duplicate, reorder. Examples: ``delay=300ms:sse``,
``drop@5s:sse``, ``loss=20%@2s-8s:ws``, ``error=503@3s-6s:http``, ``delay=50ms:ws/up``.
"""

from __future__ import annotations

from dataclasses import dataclass

from rtplay.model.faultspec import FaultSpec, FaultSpecError, parse_fault
from rtplay.protocol.faults import Kind
from rtplay.proxy.toxics import DOWNSTREAM, KINDS, UPSTREAM, Toxic, parse_attributes

_STREAMS = {"down": DOWNSTREAM, "downstream": DOWNSTREAM, "up": UPSTREAM, "upstream": UPSTREAM}

#: How each fault kind's value becomes a toxic attribute.
_ATTRIBUTE = {
    Kind.DELAY: "delay", Kind.ERROR: "status", Kind.OUTAGE: "seconds", Kind.THROTTLE: "rate",
    Kind.LOSS: "percent", Kind.DUPLICATE: "percent", Kind.REORDER: "percent",
}


@dataclass(frozen=True)
class TimedToxic:
    """A toxic with the run-relative time it starts and ends (None: until the run ends)."""

    toxic: Toxic
    start: float
    end: float | None
    spec: FaultSpec


def parse_proxy_fault(text: str) -> TimedToxic:
    """Parse a proxy fault spec; :class:`FaultSpecError` says where it is wrong."""
    body, colon, scope = text.strip().partition(":")
    kind, _, stream_name = scope.partition("/")
    kind = kind or "all"
    if colon and kind not in KINDS:
        raise FaultSpecError(text, len(body) + 1, f"a kind of traffic: {', '.join(KINDS)}")
    stream = _STREAMS.get(stream_name or "downstream")
    if stream is None:
        raise FaultSpecError(text, len(body) + len(kind) + 2, "a stream: downstream or upstream")
    spec = parse_fault(body)
    if spec.kind in (Kind.CRASH, Kind.OFFLINE):
        raise FaultSpecError(text, 0, f"a fault a proxy can do ({spec.kind.value} is not: use outage)")
    given: dict[str, object] = {"kind": kind}
    if spec.kind in _ATTRIBUTE and spec.value is not None:
        given[_ATTRIBUTE[spec.kind]] = spec.value
    if spec.kind is Kind.DELAY:
        given["jitter"] = spec.jitter
    if spec.kind is Kind.REORDER and spec.value is None:
        given["percent"] = 100.0
    attributes, kind = parse_attributes(spec.kind.value, given)
    name = text.strip().replace("/", ".")
    return TimedToxic(Toxic(name, spec.kind.value, stream, 1.0, attributes, kind), spec.start, spec.end, spec)
