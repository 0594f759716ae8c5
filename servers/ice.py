"""The UDP side of WebRTC: which addresses ICE may use, what an offer must hold, and
datagram faults on the path.

Three concerns live here, all about what actually goes on the wire under a peer connection:

* **Where ICE gathers.** aioice's ``Connection.gather_candidates`` asks the module-level
  ``aioice.ice.get_host_addresses`` for every interface address and deliberately skips
  loopback (127.0.0.1 and ::1). rtplay wants the opposite: candidates on the bind address
  only (loopback by default), nothing sent to any other interface, no STUN/TURN, no mDNS.
  :func:`gather_on` is the one deliberate hook: it swaps that function once, process-wide,
  for one that returns the bind address — but only inside a ``with gather_on(host):`` block
  (a context variable scopes it), so any other aioice user in the process is untouched.
  :func:`restrict_candidates` drops remote candidates that are not on the bind address (a
  hostname would be resolved over multicast mDNS), and :func:`ensure_on_host` checks our own
  SDP after gathering, so a future aioice that gathers elsewhere fails loudly, never leaks.
* **What an offer must hold.** :func:`parse_offer` turns a signaling body into an offer
  aiortc can answer, or one :class:`OfferError` saying why not (never anything else).
* **Datagram faults.** :class:`DatagramShaper` (pure) decides what leaves one direction of a
  UDP path given each datagram's (drop, reorder, duplicate) fate; :class:`FaultyPath` wraps a
  peer's ICE transport send/receive with it, below DTLS and SCTP, so SCTP's own recovery
  reacts to the loss exactly as it would to a lossy network.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

import aioice.ice
from aiortc.sdp import SessionDescription

from servers.udpfaults import DatagramShaper, Fate

log = logging.getLogger(__name__)

LOOPBACK = "127.0.0.1"

WILDCARDS = frozenset({"", "0.0.0.0", "::"})
"""Bind addresses meaning "every interface": ICE then gathers on every interface too."""

#: Remote ICE candidates accepted in one offer. A loopback peer needs one; browsers offer a
#: handful. Each becomes a pair of connectivity checks, so the count is bounded.
MAX_REMOTE_CANDIDATES = 16

# --- where ICE gathers ----------------------------------------------------------------------

_gather_host: ContextVar[str | None] = ContextVar("rtplay_ice_gather_host", default=None)
_original_get_host_addresses: Callable[[bool, bool], list[str]] | None = None


def host_addresses(bind_host: str, everywhere: Callable[[], list[str]]) -> list[str]:
    """The addresses ICE may gather on for ``bind_host``: that address alone, or every
    interface (``everywhere()``, which aioice computes without loopback) plus loopback."""
    if bind_host in WILDCARDS:
        return [LOOPBACK, *everywhere()]
    return [bind_host]


def _get_host_addresses(use_ipv4: bool, use_ipv6: bool) -> list[str]:
    """Stands in for ``aioice.ice.get_host_addresses`` (same signature)."""
    assert _original_get_host_addresses is not None
    original = _original_get_host_addresses
    host = _gather_host.get()
    if host is None:  # not an rtplay peer: aioice's own behaviour
        return original(use_ipv4, use_ipv6)
    return host_addresses(host, lambda: original(use_ipv4, use_ipv6))


def _install() -> None:
    """Swap aioice's address lookup for :func:`_get_host_addresses`, once.

    aioice 0.9-0.13 look the function up by module global at each ``gather_candidates``
    call, so replacing the module attribute is enough. If a future aioice drops it, fail
    here rather than gather on every interface.
    """
    global _original_get_host_addresses
    if _original_get_host_addresses is not None:
        return
    current = getattr(aioice.ice, "get_host_addresses", None)
    if current is None:
        raise RuntimeError("aioice.ice.get_host_addresses is gone: cannot keep ICE on the bind address")
    _original_get_host_addresses = current
    aioice.ice.get_host_addresses = _get_host_addresses


@contextmanager
def gather_on(host: str) -> Iterator[None]:
    """Within this block (and tasks it starts), ICE gathers host candidates on ``host`` only.

    Wrap every aiortc call that may gather (``setLocalDescription``; also
    ``setRemoteDescription``, which schedules the connect task) in it.
    """
    _install()
    token = _gather_host.set(host)
    try:
        yield
    finally:
        _gather_host.reset(token)


# --- candidates in SDP ----------------------------------------------------------------------


def _candidate_address(line: str) -> tuple[str, str] | None:
    """(transport, address) of an ``a=candidate:`` line; None for other lines."""
    if not line.startswith("a=candidate:"):
        return None
    # RFC 8839 §5.1: foundation component transport priority address port "typ" type ...
    bits = line[len("a=candidate:") :].split()
    if len(bits) < 8:
        return ("?", "?")
    return (bits[2].lower(), bits[4])


def candidate_addresses(sdp: str) -> list[str]:
    """The connection address of every ICE candidate in ``sdp``, in order."""
    found = (_candidate_address(line.strip()) for line in sdp.splitlines())
    return [c[1] for c in found if c is not None]


def address_allowed(address: str, host: str) -> bool:
    """Whether a candidate address is one ICE may talk to when bound on ``host``.

    Only IP literals qualify: a hostname (``*.local``) would make aioice resolve it over
    multicast mDNS on every interface.
    """
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    if host in WILDCARDS:
        return True
    try:
        return ip == ipaddress.ip_address(host)
    except ValueError:
        return False


def restrict_candidates(sdp: str, host: str) -> tuple[str, list[str]]:
    """``sdp`` without the UDP candidates ICE must not use from ``host``, and what was removed.

    Non-UDP (TCP) candidates are removed too: aioice only speaks UDP.
    """
    kept: list[str] = []
    removed: list[str] = []
    for line in sdp.splitlines():
        cand = _candidate_address(line.strip())
        if cand is not None and (cand[0] != "udp" or not address_allowed(cand[1], host)):
            removed.append(cand[1])
            continue
        kept.append(line)
    return "\r\n".join(kept) + "\r\n", removed


def ensure_on_host(sdp: str, host: str) -> None:
    """Raise RuntimeError if our own SDP offers a candidate that is not on ``host``."""
    stray = [a for a in candidate_addresses(sdp) if not address_allowed(a, host)]
    if stray:
        raise RuntimeError(f"ICE gathered off the bind address {host}: {', '.join(stray)}")
    if not candidate_addresses(sdp):
        raise RuntimeError(f"ICE gathered no candidate on {host}")


# --- the offer -----------------------------------------------------------------------------


class OfferError(ValueError):
    """The offer cannot be answered; the message says why (sent back with a 400)."""


@dataclass(frozen=True, slots=True)
class Offer:
    sdp: str
    """The offer with only the candidates ICE may use (see :func:`restrict_candidates`)."""
    removed: tuple[str, ...]
    """Addresses of the candidates that were dropped."""


def parse_offer(body: bytes, host: str) -> Offer:
    """Validate a ``{"sdp", "type": "offer"}`` body; raise :class:`OfferError` saying why not."""
    try:
        payload = json.loads(body)
    except (ValueError, RecursionError) as exc:  # RecursionError: absurdly deep nesting
        raise OfferError(f"body is not JSON: {str(exc)[:80]}") from None
    if not isinstance(payload, dict):
        raise OfferError('expected a JSON object {"sdp": ..., "type": "offer"}')
    kind, sdp = payload.get("type"), payload.get("sdp")
    if kind != "offer":
        raise OfferError(f'type must be "offer", got {str(kind)[:40]!r}')
    # RFC 8866 §5: a session description starts with the version line "v=0".
    if not isinstance(sdp, str) or not sdp.startswith("v=0"):
        raise OfferError('sdp must be a session description starting with "v=0"')
    try:
        description = SessionDescription.parse(sdp)
    except Exception as exc:  # aiortc's parser raises assorted types (assert, Index, Value…)
        raise OfferError(f"malformed SDP: {type(exc).__name__}: {str(exc)[:80]}") from None
    kinds = [m.kind for m in description.media]
    if kinds != ["application"]:
        raise OfferError(f"expected exactly one data-channel (m=application) section, got {kinds}")
    media = description.media[0]
    if media.ice is None or not media.ice.usernameFragment or not media.ice.password:
        raise OfferError("SDP lacks ICE credentials (a=ice-ufrag / a=ice-pwd)")
    if media.dtls is None or not media.dtls.fingerprints:
        raise OfferError("SDP lacks a DTLS fingerprint (a=fingerprint)")
    if len(media.ice_candidates) > MAX_REMOTE_CANDIDATES:
        raise OfferError(f"more than {MAX_REMOTE_CANDIDATES} ICE candidates")
    restricted, removed = restrict_candidates(sdp, host)
    if not candidate_addresses(restricted):
        raise OfferError(f"no UDP ICE candidate on {host} (gather before offering; no trickle)")
    return Offer(restricted, tuple(removed))


# --- datagram faults ------------------------------------------------------------------------


class FaultyPath:
    """Applies datagram faults to one ICE transport's data path, in both directions.

    aiortc's ``RTCIceTransport`` exposes ``_send``/``_recv`` ("expose recv / send methods")
    and DTLS calls exactly those for every datagram, so replacing the two attributes is the
    one place where every DTLS/SCTP datagram of a peer passes. STUN (ICE checks, consent
    freshness) uses the socket directly and is spared, so a loss fault exercises SCTP's
    recovery without ICE declaring the path dead.
    """

    def __init__(self, ice_transport: Any, fate: Callable[[], Fate], clock: Callable[[], float]) -> None:
        self._fate = fate
        self._clock = clock
        self._send_raw: Callable[[bytes], Awaitable[None]] = ice_transport._send
        self._recv_raw: Callable[[], Awaitable[bytes]] = ice_transport._recv
        self.outbound = DatagramShaper()
        self.inbound = DatagramShaper()
        self._ready: deque[bytes] = deque()
        self._flush: asyncio.TimerHandle | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        ice_transport._send = self.send
        ice_transport._recv = self.recv

    async def send(self, data: bytes) -> None:
        """Send one datagram through its fate."""
        for datagram in self.outbound.push(data, self._fate(), self._clock()):
            await self._send_raw(datagram)
        self._arm_flush()

    def _arm_flush(self) -> None:
        deadline = self.outbound.deadline
        if deadline is None or self._flush is not None:
            return
        loop = asyncio.get_running_loop()
        self._flush = loop.call_later(max(0.0, deadline - self._clock()), self._flush_held)

    def _flush_held(self) -> None:
        self._flush = None
        for datagram in self.outbound.due(self._clock()):
            task = asyncio.ensure_future(self._send_quietly(datagram))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        self._arm_flush()

    async def _send_quietly(self, datagram: bytes) -> None:
        try:
            await self._send_raw(datagram)
        except ConnectionError:  # the path closed while the datagram was held: it is lost
            pass

    async def recv(self) -> bytes:
        """The next datagram that survives its fate."""
        while not self._ready:
            deadline = self.inbound.deadline
            if deadline is None:
                data = await self._recv_raw()
            else:
                try:
                    data = await asyncio.wait_for(self._recv_raw(), max(0.0, deadline - self._clock()))
                except TimeoutError:
                    self._ready.extend(self.inbound.due(self._clock()))
                    continue
            self._ready.extend(self.inbound.push(data, self._fate(), self._clock()))
        return self._ready.popleft()

    def close(self) -> None:
        """Forget a held datagram (the peer is going away)."""
        if self._flush is not None:
            self._flush.cancel()
            self._flush = None
