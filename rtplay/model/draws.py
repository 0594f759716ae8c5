"""A seeded random stream that a browser page can reproduce draw for draw. Pure.

rtplay's retry policies draw their jitter from a :class:`random.Random`. Python's default
generator (Mersenne Twister) has no twin in a browser, so when rtplay and the page beside it
(``--browser``) must wait the same times, the policy draws from :class:`PortableRandom`
instead: mulberry32 (Tommy Ettinger, 2017), a 32-bit generator whose every step is integer
arithmetic modulo 2**32 that JavaScript does exactly with ``Math.imul`` and ``>>>``.
``servers/static/retry.js`` implements the same generator and the same :func:`stream_seed`,
so with the same seed text the k-th retry decision on both sides draws the same number.

Each transport gets its own stream (:func:`stream_seed` of the run's seed and its name), so
one transport's extra attempt does not shift another's draws.
"""

from __future__ import annotations

import random
from typing import Any

_MASK = 0xFFFFFFFF

#: FNV-1a, 32-bit (Fowler, Noll, Vo; draft-eastlake-fnv §2): offset basis and prime.
FNV_OFFSET = 0x811C9DC5
FNV_PRIME = 0x01000193


def _imul(a: int, b: int) -> int:
    """JavaScript's ``Math.imul`` on unsigned values: the low 32 bits of the product."""
    return (a * b) & _MASK


def fnv1a(text: str) -> int:
    """FNV-1a (32-bit) of ``text``'s UTF-8 bytes."""
    h = FNV_OFFSET
    for byte in text.encode():
        h = _imul(h ^ byte, FNV_PRIME)
    return h


def stream_seed(seed: str, transport: str) -> int:
    """The 32-bit state that starts ``transport``'s stream for the run's ``seed`` (its text):
    :func:`fnv1a` of ``"SEED/TRANSPORT"``."""
    return fnv1a(f"{seed}/{transport}")


class PortableRandom(random.Random):
    """mulberry32 as a :class:`random.Random` (``random()``, and so ``uniform()``, draw from it).

    ``PortableRandom(stream_seed("7", "ws")).random()`` equals ``new PortableRandom(streamSeed
    ("7", "ws")).random()`` in the page's ``retry.js``, bit for bit.
    """

    def __init__(self, state: int = 0) -> None:
        self._state = 0
        super().__init__(state)  # calls seed(state)

    def seed(self, a: object = None, version: int = 2) -> None:
        """Start over from the 32-bit state ``a`` (an int; anything else starts from 0)."""
        self._state = (a if isinstance(a, int) else 0) & _MASK

    def random(self) -> float:
        """The next draw in [0, 1): a 32-bit output over 2**32 (exact in a double)."""
        self._state = (self._state + 0x6D2B79F5) & _MASK
        t = self._state
        t = _imul(t ^ (t >> 15), t | 1)
        t ^= (t + _imul(t ^ (t >> 7), t | 61)) & _MASK
        return ((t ^ (t >> 14)) & _MASK) / 4294967296

    def getrandbits(self, k: int) -> int:
        """``k`` random bits, 32 per draw (for ``randrange`` and friends)."""
        bits, have = 0, 0
        while have < k:
            bits = (bits << 32) | int(self.random() * 4294967296)
            have += 32
        return bits >> (have - k)

    def getstate(self) -> tuple[Any, ...]:
        """The generator's 32-bit state."""
        return (self._state,)

    def setstate(self, state: tuple[Any, ...]) -> None:
        """Resume from :meth:`getstate`."""
        self._state = int(state[0]) & _MASK
