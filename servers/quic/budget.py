"""What a WebTransport peer may make the server hold, and when a peer counts as not reading.

QUIC flow control (RFC 9000 §4.1) lets a receiver decide how much the server may send; what
the server writes beyond that waits in its send buffers until the peer grants credit. A peer
that never does (or reads nothing) would hold everything written for it, so the bytes waiting
are bounded per session and per connection (the writer stops queueing at the bound), and a
sender whose bytes wait for credit that does not come for :data:`STUCK_AFTER_S` is reaped.
Pure: no asyncio, no clock (``now`` is passed in).
"""

from __future__ import annotations

from collections.abc import Hashable

#: Bytes a session's envelope stream may hold unacknowledged (sent or waiting to be). ~2.5 s
#: of envelopes at 1000 msg/s (~100 B each): far above what a reading peer has in flight
#: (100 KB/s × a 100 ms round trip = 10 KB), and a catching-up replay just waits under it.
MAX_SESSION_BUFFERED_BYTES = 256 * 1024

#: Bytes one QUIC connection may hold for its peer, every stream and queued datagram together:
#: what its sessions may write shares it. Four sessions' worth: a client that hoards on all of
#: :data:`~servers.quic.server.MAX_SESSIONS_PER_CONNECTION` sessions costs 1 MiB, not 8 x 256 KiB.
MAX_CONNECTION_BUFFERED_BYTES = 1024 * 1024

#: Of a connection's bound, what envelopes (stream and datagrams) may not use: room for what
#: must still go out once they are stopped, such as eight close capsules (at most ~1 KiB each,
#: draft-ietf-webtrans-http3-02 §5) and response headers.
CONTROL_RESERVE_BYTES = 16 * 1024

#: What the envelopes of all of a connection's sessions may hold together.
ENVELOPE_BUDGET_BYTES = MAX_CONNECTION_BUFFERED_BYTES - CONTROL_RESERVE_BYTES

#: Unacknowledged pong bytes on a ping stream before its session counts as not reading: ~130
#: pongs, where a client that pings every 5 s and reads its pongs has one or two in flight.
MAX_PONG_BUFFERED_BYTES = 4096

#: Seconds that bytes may wait for flow-control credit the peer never grants (nothing
#: acknowledged, no credit raised) before the sender is reaped. A reading peer raises its
#: credit within a round trip or two of needing it; 5 s is half the idle timeout.
STUCK_AFTER_S = 5.0


def room(session_buffered: int, connection_buffered: int) -> int:
    """Bytes a session may write now (0: stop queueing and wait for the peer)."""
    return max(0, min(MAX_SESSION_BUFFERED_BYTES - session_buffered,
                      ENVELOPE_BUDGET_BYTES - connection_buffered))


class CreditWatch:
    """Since when has a sender been blocked on flow-control credit without any progress?

    Fed snapshots (``blocked``: new bytes wait for credit; ``progress``: anything that changes
    when the peer acknowledges data or grants credit); stuck once blocked with the same
    progress for ``stuck_after_s``.
    """

    def __init__(self, stuck_after_s: float = STUCK_AFTER_S) -> None:
        self.stuck_after_s = stuck_after_s
        self._since: float | None = None
        self._progress: Hashable = None

    def observe(self, blocked: bool, progress: Hashable, now: float) -> None:
        """Record a snapshot taken at ``now``."""
        if not blocked:
            self._since = None
        elif self._since is None or progress != self._progress:
            self._since = now
        self._progress = progress

    @property
    def deadline(self) -> float | None:
        """When the sender counts as stuck if nothing moves; None while it is not blocked."""
        return None if self._since is None else self._since + self.stuck_after_s

    def stuck(self, now: float) -> bool:
        """Blocked, with nothing moving, for ``stuck_after_s`` by ``now``."""
        deadline = self.deadline
        return deadline is not None and now >= deadline
