"""A token bucket for the ``throttle KB/s`` fault. Pure: time is passed in."""

from __future__ import annotations

#: Bytes a throttled connection may send in one burst: about one TCP segment's worth, so a
#: throttle of a few KB/s is visible message by message instead of in large clumps.
BURST_BYTES = 1500


class TokenBucket:
    """Say how long to wait before sending ``n`` bytes at ``rate`` bytes per second."""

    def __init__(self, now: float) -> None:
        self._tokens = float(BURST_BYTES)
        self._updated = now

    def reset(self, now: float) -> None:
        """Forget any debt (the throttle was cleared or changed): start from a full burst."""
        self._tokens = float(BURST_BYTES)
        self._updated = now

    def delay_for(self, n: int, rate: float, now: float) -> float:
        """Take ``n`` bytes from the bucket; return the seconds to wait before sending them."""
        self._tokens = min(BURST_BYTES, self._tokens + (now - self._updated) * rate)
        self._updated = now
        self._tokens -= n
        return 0.0 if self._tokens >= 0 else -self._tokens / rate
