"""The fault spec grammar of ``--fault`` and scenario files. Pure.

    SPEC   := KIND [ "=" VALUE [ "±" JITTER ] ] [ "@" START [ "-" END ] ] [ ":" SCOPE ]
    KIND   := drop | stall | delay | error | outage | crash | loss | reorder | duplicate
              | throttle | offline
    VALUE  := NUMBER [ UNIT ]      delay: ms (default) or s; error: a status code;
                                   outage/crash: s (default) or ms; loss/reorder/duplicate: %;
                                   throttle: KB/s (default)
    START, END := NUMBER [ "ms" | "s" ]   seconds from the start of the run (default s)
    SCOPE  := all | poll | longpoll | sse | ws | wt | rtc       (default all)

Examples: ``drop@3s``, ``delay=300ms±50ms@5s-10s:sse``, ``loss=20%@2s-8s:wt``,
``error=503@2s:longpoll``, ``outage=4s@3s``. ``+-`` may stand for ``±``. Without an END a
fault lasts until the end of the run (``outage`` and ``crash`` last their VALUE).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from rtplay.protocol.faults import ALL, VALUE_UNITS, FaultError, Kind, validate


class FaultSpecError(ValueError):
    """A spec that does not parse: says where and what was expected."""

    def __init__(self, spec: str, position: int, expected: str) -> None:
        self.spec = spec
        self.position = position
        self.expected = expected
        pointer = " " * position + "^"
        super().__init__(f"bad fault spec {spec!r} at position {position}: expected {expected}\n  {spec}\n  {pointer}")


@dataclass(frozen=True)
class FaultSpec:
    """One fault of a timeline."""

    kind: Kind
    value: float | None = None
    jitter: float = 0.0
    start: float = 0.0
    """Seconds from the start of the run."""
    end: float | None = None
    """Seconds from the start of the run; None = until the run ends (or its own length)."""
    scope: str = ALL

    @property
    def duration(self) -> float | None:
        return None if self.end is None else self.end - self.start

    def __str__(self) -> str:
        text = self.kind.value
        if self.value is not None:
            unit = VALUE_UNITS[self.kind]
            text += f"={self.value:g}" + ("" if unit == "status" else unit)
            if self.jitter:
                text += f"±{self.jitter:g}ms"
        text += f"@{self.start:g}s" + (f"-{self.end:g}s" if self.end is not None else "")
        return text + ("" if self.scope == ALL else f":{self.scope}")


_NUMBER = re.compile(r"\d+(?:\.\d+)?|\.\d+")
_KINDS = "|".join(k.value for k in Kind)

# Accepted units per value unit, with the factor to the canonical unit.
_VALUE_UNITS: dict[str, dict[str, float]] = {
    "ms": {"": 1, "ms": 1, "s": 1000},
    "s": {"": 1, "s": 1, "ms": 0.001},
    "%": {"": 1, "%": 1},
    "KB/s": {"": 1, "kb/s": 1, "kbps": 1, "mb/s": 1000},
    "status": {"": 1},
}


class _Reader:
    def __init__(self, spec: str) -> None:
        self.spec = spec
        self.pos = 0

    def fail(self, expected: str) -> FaultSpecError:
        return FaultSpecError(self.spec, self.pos, expected)

    def peek(self, text: str) -> bool:
        return self.spec.startswith(text, self.pos)

    def take(self, text: str) -> bool:
        if self.peek(text):
            self.pos += len(text)
            return True
        return False

    def number(self, expected: str) -> float:
        match = _NUMBER.match(self.spec, self.pos)
        if not match:
            raise self.fail(expected)
        self.pos = match.end()
        return float(match.group())

    def unit(self, allowed: dict[str, float], expected: str) -> float:
        rest = self.spec[self.pos :].lower()
        for unit in sorted(allowed, key=len, reverse=True):
            if unit and rest.startswith(unit):
                self.pos += len(unit)
                return allowed[unit]
        if rest[:1].isalpha() or rest[:1] == "%":
            raise self.fail(expected)
        return allowed[""]

    def time(self) -> float:
        value = self.number("a time such as 3s or 500ms")
        return value * self.unit({"": 1, "s": 1, "ms": 0.001}, "a time unit: s or ms")


def parse_fault(spec: str) -> FaultSpec:
    """Parse one spec; raise :class:`FaultSpecError` with the position of the first problem."""
    reader = _Reader(spec.strip())
    match = re.match(_KINDS, reader.spec)
    if not match or (len(reader.spec) > match.end() and reader.spec[match.end()] not in "=@:"):
        raise reader.fail(f"a fault kind: {', '.join(k.value for k in Kind)}")
    kind = Kind(match.group())
    reader.pos = match.end()
    unit = VALUE_UNITS.get(kind)
    value: float | None = None
    jitter = 0.0
    if reader.take("="):
        if unit is None:
            raise FaultSpecError(reader.spec, reader.pos - 1, f"'@' or ':' ({kind.value} takes no value)")
        units = _VALUE_UNITS[unit]
        unit_names = " or ".join(u for u in units if u) or "no unit"
        value = reader.number(f"a number for {kind.value} ({unit})") * reader.unit(units, f"a unit: {unit_names}")
        if reader.take("±") or reader.take("+-"):
            if kind is not Kind.DELAY:
                raise reader.fail("'@' or ':' (only delay takes ±jitter)")
            jitter = reader.number("a jitter in ms") * reader.unit(_VALUE_UNITS["ms"], "a unit: ms or s")
    elif unit is not None:
        raise reader.fail(f"'=' and a value in {unit} ({kind.value} needs one)")
    start, end = 0.0, None
    if reader.take("@"):
        start = reader.time()
        if reader.take("-"):
            at = reader.pos
            end = reader.time()
            if end <= start:
                raise FaultSpecError(reader.spec, at, f"an end time after the start ({start:g}s)")
    scope = ALL
    if reader.take(":"):
        at = reader.pos
        scope = reader.spec[reader.pos :]
        reader.pos = len(reader.spec)
        try:
            validate(kind, scope, value, jitter)
        except FaultError as exc:
            raise FaultSpecError(reader.spec, at, f"a valid scope ({exc})") from None
    if reader.pos != len(reader.spec):
        raise reader.fail("'@' (a start time) or ':' (a scope) or the end of the spec")
    try:
        validate(kind, scope, value, jitter)
    except FaultError as exc:
        raise FaultSpecError(reader.spec, len(kind.value) + 1, f"a valid value ({exc})") from None
    return FaultSpec(kind, value, jitter, start, end, scope)
