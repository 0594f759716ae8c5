"""The server's WebSocket heartbeat: ping a peer that went quiet, drop one that stays quiet.

aiohttp's own heartbeat (``WebSocketResponse(heartbeat=...)``) reschedules a timer for every
message received: a fifth of a ping/pong round trip through rtplay's server went there. Here
the check runs on a fixed period instead and looks only at how many bytes the peer has sent
(counted by the mask check, which sees every byte anyway), so a message costs nothing extra.

:class:`Liveness` is the decision, pure (no clock: it is consulted every ``interval / 2``);
:func:`keep_alive` is the task that consults it and pings or drops the connection.
"""

from __future__ import annotations

import asyncio
import enum
import logging
from collections.abc import Callable

from aiohttp import web

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


async def keep_alive(
    socket: web.WebSocketResponse, received: Callable[[], int], interval: float, drop: Callable[[], None]
) -> None:
    """Ping ``socket``'s peer when it goes quiet; ``drop`` the connection when it stays quiet.

    Runs until cancelled (the endpoint cancels it when the connection ends) or until it drops
    the connection: like aiohttp's heartbeat, a dead peer is not sent a closing handshake it
    would never answer (the connection ends as 1006, abnormal closure).
    """
    liveness = Liveness()
    while True:
        await asyncio.sleep(interval / CHECKS_PER_INTERVAL)
        verdict = liveness.check(received())
        if verdict is PeerVerdict.PING:
            try:
                await socket.ping()
            except (ConnectionError, RuntimeError):  # closing meanwhile: the receiver notices
                return
        elif verdict is PeerVerdict.DEAD:
            log.info("ws: no pong within %g s of a ping; dropping the connection", interval / CHECKS_PER_INTERVAL)
            drop()
            return
