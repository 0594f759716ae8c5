"""The time bins of load series (attempts, accepts, connections per 100 ms): the crowd's
figures and the server's load are binned alike, so both sides' series line up. Pure."""

from __future__ import annotations

#: Width of one bin of every load series (s).
BIN_S = 0.1


def bin_of(t: float) -> int:
    """The 100 ms bin of time ``t`` (division, not ``//``: ``2.0 // 0.1`` is 19.0)."""
    return int(t / BIN_S + 1e-9)
