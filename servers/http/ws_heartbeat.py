"""The server's WebSocket heartbeat: ping a peer that went quiet, drop one that stays quiet.

aiohttp's own heartbeat (``WebSocketResponse(heartbeat=...)``) reschedules a timer for every
message received: a fifth of a ping/pong round trip through rtplay's server went there. Here
the check runs on a fixed period instead and looks only at how many bytes the peer has sent
(counted by the mask check, which sees every byte anyway), so a message costs nothing extra.

:class:`Liveness` is the decision, pure (no clock: it is consulted every ``interval / 2``);
:class:`HeartbeatWheel` consults it for every connection of a listener on one timer, and
pings or drops.
"""

from __future__ import annotations

import asyncio
import enum
import logging
from collections.abc import Callable

from rtplay.runtime.memory import oversized

log = logging.getLogger(__name__)

#: Checks per heartbeat interval. Two: a peer is pinged after between one half and one whole
#: interval of silence, and dropped half an interval after an unanswered ping (aiohttp's own
#: heartbeat pings after one interval and waits half of one for the pong).
CHECKS_PER_INTERVAL = 2


class PeerVerdict(enum.Enum):
    ALIVE = "alive"
    PING = "ping"
    DEAD = "dead"


class Liveness:
    """What to do about a peer, from the running count of bytes it has sent (pure).

    :meth:`check` is called every ``interval / CHECKS_PER_INTERVAL``. Any byte since the last
    check (a pong, a message, a close frame) proves the peer alive; two quiet checks in a row
    earn a ping; a quiet check after the ping means the peer is gone.
    """

    def __init__(self) -> None:
        self._seen = 0
        self._quiet = 0
        self._pinged = False

    def check(self, received: int) -> PeerVerdict:
        """The verdict, given that the peer has sent ``received`` bytes so far."""
        if received != self._seen:
            self._seen, self._quiet, self._pinged = received, 0, False
            return PeerVerdict.ALIVE
        if self._pinged:
            return PeerVerdict.DEAD
        self._quiet += 1
        if self._quiet >= CHECKS_PER_INTERVAL:
            self._pinged = True
            return PeerVerdict.PING
        return PeerVerdict.ALIVE


#: An unsolicited server ping (RFC 6455 §5.5.2: opcode 0x9, FIN, no payload, unmasked as
#: every server frame is); the peer answers it with a pong.
PING_FRAME = b"\x89\x00"


class _Peer:
    """One WebSocket in the wheel: its byte count, how to ping it and how to drop it."""

    __slots__ = ("received", "ping", "drop", "liveness")

    def __init__(self, received: Callable[[], int], ping: Callable[[], None], drop: Callable[[], None]) -> None:
        self.received = received
        self.ping = ping
        self.drop = drop
        self.liveness = Liveness()


class HeartbeatWheel:
    """Every WebSocket's heartbeat on one timer.

    A task per connection woke every ``interval / 2`` to look at one counter: at 5,000
    WebSockets and a 10 s heartbeat, 1,000 wake-ups and timers a second. The wheel keeps one
    timer while any connection is in it, and at each tick consults every peer's
    :class:`Liveness` (the same decision, the same period): pings the quiet, drops the dead.
    ``interval`` is read at every tick (0 or less: no checks; the peers stay).
    """

    def __init__(self, interval: Callable[[], float]) -> None:
        self._interval = interval
        self._peers: set[_Peer] = set()
        self._timer: asyncio.TimerHandle | None = None

    def __len__(self) -> int:
        return len(self._peers)

    def add(self, received: Callable[[], int], ping: Callable[[], None], drop: Callable[[], None]) -> Callable[[], None]:
        """Watch a connection (``received``: bytes its peer sent so far); returns its removal."""
        peer = _Peer(received, ping, drop)
        self._peers.add(peer)
        if self._timer is None:
            self._arm()
        return lambda: self._forget(peer)

    def _forget(self, peer: _Peer) -> None:
        self._peers.discard(peer)
        if oversized(self._peers):  # a burst of WebSockets has left: drop its table
            self._peers = set(self._peers)

    def _arm(self) -> None:
        interval = self._interval()
        if interval > 0:
            self._timer = asyncio.get_running_loop().call_later(interval / CHECKS_PER_INTERVAL, self._tick)

    def _tick(self) -> None:
        self._timer = None
        for peer in list(self._peers):
            verdict = peer.liveness.check(peer.received())
            if verdict is PeerVerdict.PING:
                peer.ping()
            elif verdict is PeerVerdict.DEAD:
                log.info("ws: no pong within %g s of a ping; dropping the connection", self._interval() / CHECKS_PER_INTERVAL)
                self._forget(peer)
                # Like aiohttp's heartbeat, a dead peer is not sent a closing handshake it would
                # never answer (the connection ends as 1006, abnormal closure).
                peer.drop()
        if self._peers:
            self._arm()

    def close(self) -> None:
        """Stop the timer (the listener is going away)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
