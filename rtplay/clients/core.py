"""The reconnecting-client core: connect → receive → notice → decide → wait → resume, once.

Every reconnecting client (long-poll, SSE, WebSocket, WebTransport, WebRTC) is a
:class:`ReconnectingClient` that implements only what differs between protocols:
:meth:`~ReconnectingClient.attempt` (one connection, from connect to its end) and, where the
protocol needs it, :meth:`~ReconnectingClient.explain` (how an error reads) and
:meth:`~ReconnectingClient.server_hint` (what the server asked for). The loop, the decision
(a named policy from :mod:`rtplay.model.retry`), the wait, the heartbeat, reset signals and the
start of a live (unreliable) channel are written here, once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from rtplay.clients.base import MAIN, Client, Emit
from rtplay.clients.turns import NoticeTurns
from rtplay.model.oserrors import describe_error
from rtplay.model.retry import Backoff, Heartbeat
from rtplay.model.retry_spec import PolicySpec, parse_policy
from rtplay.protocol.envelope import RESET, ProtocolError, Received

log = logging.getLogger(__name__)


class HeartbeatTimeout(Exception):
    """The peer stayed silent past the heartbeat's timeout: presumed dead."""


class Fail(Exception):
    """The connection fails for good: the client stops and does not reconnect."""


def reset_signal(payload: object) -> int | None:
    """The reset signal ``{"reset": {"since": n, "first": N}}``: N; None when ``payload`` is no reset.

    Strict, the same on every transport: a ``reset`` key whose value is not
    ``{"first": int >= 1}`` is a :class:`ProtocolError`, never silently ignored (a reset
    ignored is a loss nobody accounts for).
    """
    if not isinstance(payload, dict) or RESET not in payload:
        return None
    return parse_reset(payload[RESET])


def parse_reset(reset: object) -> int:
    """The body of a reset signal, ``{"since": n, "first": N}`` → N; ProtocolError otherwise."""
    first = reset.get("first") if isinstance(reset, dict) else None
    if not isinstance(first, int) or isinstance(first, bool) or first < 1:
        raise ProtocolError(f"bad reset: {str(reset)[:60]!r}")
    return first


#: The errors that end one attempt of every reconnecting client (a transport adds its own).
ATTEMPT_ERRORS: tuple[type[BaseException], ...] = (ProtocolError, HeartbeatTimeout, OSError, TimeoutError)


class ReconnectingClient(Client):
    """A client that reconnects per a named retry policy until cancelled or failed."""

    default_policy = "socketio"
    """The policy (``--retry`` grammar) used when none is given."""
    errors: tuple[type[BaseException], ...] = ATTEMPT_ERRORS
    """What :meth:`attempt` may raise to end one attempt (anything else is a bug)."""
    opens_before_data = True
    """The server confirms the connection before any message (a stream's handshake): the
    session can wait for it before publishing."""

    def __init__(
        self,
        base_url: str,
        emit: Emit | None = None,
        *,
        retry: Backoff | PolicySpec | str | None = None,
        rng: random.Random | None = None,
        quiet_pings: bool = False,
        notice_turns: NoticeTurns | None = None,
        **kw: Any,
    ) -> None:
        super().__init__(base_url, emit, **kw)
        self.rng = rng or random.Random()
        """Where the policy draws its jitter (seeded per client in a crowd)."""
        self.quiet_pings = quiet_pings
        """Ping only after a heartbeat interval without traffic (crowd clients); the pane's
        client pings on every interval, to measure round trips."""
        self.notice_turns = notice_turns
        """Shared by the clients of one crowd slice: a loss they all notice at once is taken
        a few hundred clients a turn of the loop, so that retry timers already due fire on time
        (:mod:`rtplay.clients.turns`)."""
        self.retry: Backoff
        self.retry_spec: PolicySpec | None = None
        self.set_policy(retry)

    def set_policy(self, retry: Backoff | PolicySpec | str | None) -> None:
        """Use ``retry`` from the next decision on (a spec is built on this client's RNG)."""
        if retry is None:
            retry = parse_policy(self.default_policy)
        elif isinstance(retry, str):
            retry = parse_policy(retry)
        if isinstance(retry, PolicySpec):
            self.retry_spec, self.retry = retry, retry.build(self.rng)
        else:
            self.retry_spec, self.retry = None, retry

    # --- what an adapter implements ----------------------------------------------------

    async def attempt(self) -> str:
        """One connection from connect to its end: return (or raise) why it ended."""
        raise NotImplementedError

    @contextlib.asynccontextmanager
    async def resources(self) -> AsyncIterator[None]:
        """What lives across attempts (an HTTP client…); nothing by default."""
        yield

    def explain(self, exc: BaseException) -> tuple[str, float | None]:
        """Why an attempt ended (OS errors in words), and a server-requested wait (Retry-After) if any."""
        return describe_error(exc), None

    def server_hint(self) -> float | None:
        """What the server asked the client to wait (an event stream's ``retry:``)."""
        return None

    # --- the loop --------------------------------------------------------------------------

    async def run(self) -> None:
        """Connect, receive, and retry per the policy until cancelled (or failed for good)."""
        async with self.resources():
            while True:
                self._connecting()
                retry_after: float | None = None
                try:
                    reason = await self.attempt()
                except Fail as exc:
                    self._failed(str(exc))
                    return
                except self.errors as exc:
                    reason, retry_after = self.explain(exc)
                if self.notice_turns is not None:
                    await self.notice_turns.wait()
                self._disconnected(reason)
                await self.backoff(retry_after)

    async def backoff(self, retry_after: float | None = None) -> None:
        """Decide the wait (the policy; a longer Retry-After wins) and wait it."""
        decision = self.retry.decide(self.clock(), self.server_hint())
        delay, policy = decision.delay, decision.policy
        if retry_after is not None and retry_after > delay:
            delay, policy = retry_after, "Retry-After"
        await self._wait_retry(delay, policy)

    def _connected(self, detail: str = "") -> None:
        self.retry.reset()
        super()._connected(detail)

    # --- the heartbeat, once ---------------------------------------------------------------

    async def heartbeat_loop(
        self,
        ping: Callable[[], Awaitable[None]],
        step: Callable[[float], Awaitable[bool]],
        interval: float,
        timeout: float,
    ) -> Heartbeat:
        """Ping every ``interval``; a peer silent ``timeout`` after a ping is dead.

        ``step(seconds)`` waits at most that long for the connection (receiving, or watching
        it end) and returns True when it ended; it calls :meth:`Heartbeat.heard` through
        :attr:`heartbeat` on any traffic. Raises :class:`HeartbeatTimeout`.
        """
        heartbeat = self.heartbeat = Heartbeat(interval, timeout, self.clock(), self.quiet_pings)
        try:
            while True:
                now = self.clock()
                if heartbeat.expired(now):
                    raise HeartbeatTimeout(f"no pong within {timeout:g}s: peer presumed dead")
                if heartbeat.ping_due(now):
                    await ping()
                    heartbeat.ping_sent(now)
                if await step(heartbeat.next_deadline(now) - now):
                    return heartbeat
        finally:
            self.heartbeat = None

    heartbeat: Heartbeat | None = None
    """The live connection's heartbeat (None between connections)."""

    def heard(self) -> None:
        """Traffic from the peer: it is alive."""
        if self.heartbeat is not None:
            self.heartbeat.heard(self.clock())

    def handle_reset(self, payload: object, channel: str = MAIN) -> bool:
        """Account ``payload`` if it is a reset signal; True when it was one."""
        first = reset_signal(payload)
        if first is None:
            return False
        self.on_reset(first, channel)
        return True


async def run_guarded(client: Client, start_in: float = 0.0) -> None:
    """Run ``client`` (after ``start_in`` s); a bug in it ends that client, never its caller."""
    try:
        await asyncio.sleep(start_in)
        await client.run()
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        log.exception("%s client crashed", client.name)
        client._failed(f"client error: {type(exc).__name__}: {exc}")


#: Envelopes of an unreliable channel held until the reliable one says where this
#: connection's live traffic starts (``{"live": L}``; the two may arrive in either order).
#: Beyond this many they are accounted at once; at 2000 msg/s this is half a second.
MAX_EARLY = 1024


class LiveStart:
    """The start of an unreliable channel on one connection (WebTransport datagrams, WebRTC
    ``unreliable``): the server says with ``{"live": L}`` which seq the channel starts at, and
    the accounting model counts the channel's losses from there (up or down, see
    :mod:`rtplay.model.accounting`). Envelopes that overtake the marker wait for it."""

    def __init__(
        self,
        on_live: Callable[[int], None],
        account: Callable[[Received, float], object],
    ) -> None:
        self.on_live = on_live
        self.account = account
        self.live_from: int | None = None
        """This connection's first seq on the channel, once the server said."""
        self._early: list[tuple[Received, float]] = []

    def start(self, first: object) -> None:
        """The ``{"live": L}`` marker arrived (ProtocolError when L is not a seq)."""
        if not isinstance(first, int) or isinstance(first, bool) or first < 1:
            raise ProtocolError(f"bad live marker: {str(first)[:60]!r}")
        self.live_from = first
        self.on_live(first)
        early, self._early = self._early, []
        for env, received_ms in early:
            self.account(env, received_ms)

    def offer(self, env: Received, received_ms: float) -> None:
        """An envelope arrived on the channel: account it, or hold it until the marker."""
        if self.live_from is None and len(self._early) < MAX_EARLY:
            self._early.append((env, received_ms))
            return
        self.account(env, received_ms)


async def wait_ended(ended: asyncio.Future[Any] | asyncio.Event, seconds: float) -> bool:
    """Wait at most ``seconds`` for ``ended``; True when it is done/set."""
    if isinstance(ended, asyncio.Event):
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(ended.wait(), max(0.0, seconds))
        return ended.is_set()
    await asyncio.wait({ended}, timeout=max(0.0, seconds))
    return ended.done()
