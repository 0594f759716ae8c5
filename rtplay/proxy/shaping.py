"""When each chunk or message a proxied connection carries goes out, and in what shape. Pure.

A connection has one :class:`Shaper` per direction. The adapter hands it every unit (a chunk of
bytes, one SSE event, one WebSocket message) with its arrival time and the toxics of the proxy;
it answers with a :class:`Step`: when to send, how many copies, whether to hold it back behind
the next one, how to slice it and whether the connection ends after it. No clock, no sockets:
``now`` and the RNG come in, so every decision is exact in tests.

Semantics follow Toxiproxy's toxics (github.com/Shopify/toxiproxy, toxics/*.go): ``latency``
delays each chunk by latency ± jitter (uniform) without cutting throughput; ``bandwidth`` sends a
chunk, then waits its size / rate; ``slicer`` cuts a chunk into pieces of average_size ±
size_variation bytes, ``delay`` µs apart; ``limit_data`` closes once ``bytes`` have passed.
Order is kept: a unit never overtakes the one before it (except by ``reorder``, on purpose).
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from dataclasses import dataclass, field

from rtplay.proxy.toxics import MESSAGE_TYPES, Toxic

#: Longest a reordered message waits for a successor to overtake it before it goes out
#: anyway: a quiet stream must not keep a message forever. Longer than any message gap a
#: real-time stream has while still visibly "late".
REORDER_HOLD_S = 1.0


@dataclass(frozen=True)
class Step:
    """What to do with one unit."""

    due: float
    """When to send it (the caller's clock)."""
    copies: int = 1
    """0: lost (``loss``), 1, or 2 (``duplicate``)."""
    hold: bool = False
    """``reorder``: send it after the next unit (or after :data:`REORDER_HOLD_S`)."""
    pieces: tuple[int, ...] = ()
    """``slicer``: the sizes to cut a byte chunk into (empty: send whole)."""
    piece_gap_s: float = 0.0
    """``slicer``: the pause between pieces."""
    keep_bytes: int | None = None
    """``limit_data``: send only this many bytes of the unit, then close (None: all of it)."""
    added_s: float = 0.0
    """Latency the proxy adds to this unit (due − arrival)."""

    @property
    def closes(self) -> bool:
        return self.keep_bytes is not None


@dataclass
class Shaper:
    """The pacing state of one direction of one connection."""

    rng: random.Random
    _last_due: float = 0.0
    _bandwidth_free_at: float = 0.0
    _sent_bytes: int = 0
    drawn: dict[str, bool] = field(default_factory=dict)
    """Per toxic name: whether this connection got it (``toxicity``, drawn once)."""

    def active(self, toxics: Iterable[Toxic], kind: str, stream: str) -> list[Toxic]:
        """The toxics that act on this connection's ``kind`` traffic in ``stream``."""
        chosen = []
        for toxic in toxics:
            if not toxic.applies(kind, stream):
                continue
            if toxic.name not in self.drawn:
                self.drawn[toxic.name] = toxic.toxicity >= 1 or self.rng.random() < toxic.toxicity
            if self.drawn[toxic.name]:
                chosen.append(toxic)
        return chosen

    def plan(self, toxics: Iterable[Toxic], size: int, arrived: float, message: bool) -> Step:
        """The step for a unit of ``size`` bytes that arrived at ``arrived``; ``toxics`` are
        the :meth:`active` ones. ``message``: an SSE event or WS message (message-level
        faults apply), not a byte chunk."""
        due, copies, hold = arrived, 1, False
        pieces: tuple[int, ...] = ()
        gap = 0.0
        keep: int | None = None
        for toxic in toxics:
            kind = toxic.type
            if kind in ("latency", "delay"):
                span = toxic.attr("latency" if kind == "latency" else "delay")
                jitter = toxic.attr("jitter")
                due += max(0.0, span + (self.rng.uniform(-jitter, jitter) if jitter else 0.0)) / 1000
            elif message and kind in MESSAGE_TYPES and self.rng.random() * 100 < toxic.attr("percent"):
                if kind == "loss":
                    copies = 0
                elif kind == "duplicate":
                    copies = 2 if copies else 0
                else:
                    hold = True
            elif kind == "slicer" and not message:
                pieces = self._slices(size, toxic)
                gap = toxic.attr("delay") / 1e6
            elif kind == "limit_data":
                left = max(0, int(toxic.attr("bytes")) - self._sent_bytes)
                if size >= left:
                    keep = left
        due = max(due, self._last_due)
        for toxic in toxics:
            if toxic.type in ("bandwidth", "throttle") and toxic.attr("rate") > 0:
                due = max(due, self._bandwidth_free_at)
                self._bandwidth_free_at = due + size * max(copies, 1) / (toxic.attr("rate") * 1000)
        self._last_due = due
        self._sent_bytes += size if keep is None else keep
        return Step(due, copies, hold, pieces, gap, keep, due - arrived)

    def _slices(self, size: int, toxic: Toxic) -> tuple[int, ...]:
        average = int(toxic.attr("average_size"))
        variation = int(toxic.attr("size_variation"))
        if average <= 0:
            return ()
        pieces: list[int] = []
        left = size
        while left > 0:
            piece = max(1, average + (self.rng.randint(-variation, variation) if variation else 0))
            pieces.append(min(piece, left))
            left -= pieces[-1]
        return tuple(pieces)


def refusal(toxics: Iterable[Toxic], kind: str) -> tuple[int, float] | None:
    """An ``error`` toxic answering new ``kind`` requests/handshakes: (status, Retry-After s)."""
    for toxic in toxics:
        if toxic.type == "error" and toxic.kind in ("all", kind):
            return int(toxic.attr("status")), toxic.attr("retry_after")
    return None


def stalled(toxics: Iterable[Toxic], kind: str, stream: str) -> bool:
    """A ``stall`` (rtplay) or a ``timeout`` (Toxiproxy: data stops) holds this traffic."""
    return any(t.type in ("stall", "timeout") and t.applies(kind, stream) for t in toxics)
