"""The retry-policy grammar: ``--retry ws=exponential:full``, scenario ``retry = "fixed:10"``.

    fixed:SECONDS                     the same wait every time (``fixed:10``, ``fixed:500ms``)
    immediate                         no wait at all
    eventsource                       the server's ``retry:`` time, else 3 s (what browsers do)
    socketio                          1 s doubling to 5 s, ±50 % (Socket.IO's defaults)
    exponential[:JITTER][,KEY=VALUE…] doubling from ``base`` to ``cap`` with JITTER none (the
                                      default), full, equal or decorrelated; keys jitter, base,
                                      cap, factor (``exponential:jitter=full,base=0.5,cap=10``)

A :class:`PolicySpec` is a parsed, validated, picklable description; :meth:`PolicySpec.build`
makes a fresh policy with its own seeded RNG, so every client of a crowd decides for itself.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field, replace

from rtplay.model.retry import (
    JITTERS,
    Backoff,
    EventSourceDelay,
    Exponential,
    ExponentialBackoff,
    ExponentialParams,
    FixedDelay,
    Immediate,
)

NAMES = ("fixed", "immediate", "eventsource", "socketio", "exponential")

#: Longest wait any policy may be given: beyond an hour a "retry" is an outage of its own.
MAX_DELAY_S = 3600.0

#: Largest growth factor: beyond it the second wait already hits any sensible cap.
MAX_FACTOR = 100.0


class RetrySpecError(ValueError):
    """A policy text that does not parse; the message says what was expected."""


@dataclass(frozen=True)
class PolicySpec:
    """A named retry policy, parsed; :meth:`build` makes a working :class:`Backoff`."""

    name: str
    seconds: float = 0.0
    """``fixed`` only: the wait."""
    exponential: ExponentialParams = field(default_factory=ExponentialParams)
    """``exponential`` only."""

    def build(self, rng: random.Random | None = None) -> Backoff:
        """A fresh policy (no failures yet) drawing from ``rng``."""
        if self.name == "fixed":
            return FixedDelay(self.seconds)
        if self.name == "immediate":
            return Immediate()
        if self.name == "eventsource":
            return EventSourceDelay()
        if self.name == "socketio":
            return ExponentialBackoff(rng=rng)
        return Exponential(self.exponential, rng=rng)

    def __str__(self) -> str:
        """The canonical text; :func:`parse_policy` reads it back to an equal spec."""
        if self.name == "fixed":
            return f"fixed:{self.seconds:g}"
        if self.name == "exponential":
            p = self.exponential
            return f"exponential:jitter={p.jitter},base={p.base:g},cap={p.cap:g},factor={p.factor:g}"
        return self.name


def _seconds(where: str, text: str) -> float:
    raw = text.strip()
    scale = 1.0
    if raw.endswith("ms"):
        raw, scale = raw[:-2], 0.001
    elif raw.endswith("s"):
        raw = raw[:-1]
    try:
        value = float(raw) * scale
    except ValueError:
        raise RetrySpecError(f"{where}: expected seconds (e.g. 10, 2.5s, 500ms), got {text!r}") from None
    if not 0 <= value <= MAX_DELAY_S or math.isnan(value):
        raise RetrySpecError(f"{where}: must be 0-{MAX_DELAY_S:g} s, got {text!r}")
    return value


def _exponential(text: str, args: str) -> PolicySpec:
    params = ExponentialParams()
    for i, item in enumerate(a.strip() for a in args.split(",") if args):
        key, eq, value = item.partition("=")
        if not eq and i == 0:
            key, value = "jitter", item
        key = key.strip()
        if key == "jitter":
            if value not in JITTERS:
                raise RetrySpecError(f"{text!r}: jitter must be one of {', '.join(JITTERS)}, got {value!r}")
            params = replace(params, jitter=value)
        elif key in ("base", "cap"):
            seconds = _seconds(f"{text!r}: {key}", value)
            params = replace(params, base=seconds) if key == "base" else replace(params, cap=seconds)
        elif key == "factor":
            try:
                factor = float(value)
            except ValueError:
                factor = math.nan
            if not 1 <= factor <= MAX_FACTOR:
                raise RetrySpecError(f"{text!r}: factor must be a number 1-{MAX_FACTOR:g}, got {value!r}")
            params = replace(params, factor=factor)
        else:
            raise RetrySpecError(
                f"{text!r}: unknown exponential setting {item!r}: expected jitter=, base=, cap=, factor= "
                f"(e.g. exponential:jitter=full,base=0.5,cap=10)"
            )
    if params.base <= 0:
        raise RetrySpecError(f"{text!r}: base must be > 0")
    if params.cap < params.base:
        raise RetrySpecError(f"{text!r}: cap ({params.cap:g} s) is below base ({params.base:g} s)")
    return PolicySpec("exponential", exponential=params)


def parse_policy(text: str) -> PolicySpec:
    """Parse one policy; :class:`RetrySpecError` names what was wrong and what is expected."""
    name, colon, args = text.strip().partition(":")
    name = name.strip().lower()
    if name == "fixed":
        if not args.strip():
            raise RetrySpecError(f"{text!r}: fixed needs a wait, e.g. fixed:10")
        return PolicySpec("fixed", seconds=_seconds(f"{text!r}", args))
    if name == "exponential":
        return _exponential(text, args)
    if name in NAMES:
        if colon:
            raise RetrySpecError(f"{text!r}: {name} takes no settings")
        return PolicySpec(name)
    raise RetrySpecError(f"unknown retry policy {text!r}: expected one of fixed:SECONDS, {', '.join(NAMES[1:])}")


def parse_assignment(text: str, transports: list[str]) -> tuple[str, PolicySpec]:
    """``TRANSPORT=POLICY`` (the ``--retry`` flag) → the transport and its policy."""
    transport, eq, policy = text.partition("=")
    transport = transport.strip()
    if not eq or not policy.strip():
        raise RetrySpecError(f"expected TRANSPORT=POLICY (e.g. ws=exponential:full), got {text!r}")
    if transport not in transports:
        raise RetrySpecError(f"{text!r}: unknown transport {transport!r}: choose from {', '.join(transports)}")
    return transport, parse_policy(policy)


#: The order the playground's retry key cycles through.
CYCLE = (
    "socketio",
    "exponential:none",
    "exponential:full",
    "exponential:equal",
    "exponential:decorrelated",
    "fixed:10",
    "eventsource",
    "immediate",
)


def next_in_cycle(current: str) -> PolicySpec:
    """The policy after ``current`` (a canonical spec text) in :data:`CYCLE`."""
    canonical = [str(parse_policy(text)) for text in CYCLE]
    try:
        index = canonical.index(current)
    except ValueError:
        index = -1
    return parse_policy(CYCLE[(index + 1) % len(CYCLE)])
