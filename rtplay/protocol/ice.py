"""Which addresses ICE may use: the rules both WebRTC ends apply to SDP. Pure.

rtplay keeps ICE on the bind address (loopback by default): candidates there only, nothing
sent to any other interface, no STUN/TURN, no mDNS. :func:`restrict_candidates` drops remote
candidates that are not on the bind address (a hostname would be resolved over multicast
mDNS), and :func:`ensure_on_host` checks our own SDP after gathering, so a future aioice that
gathers elsewhere fails loudly, never leaks. Making aioice gather there is the aioice
compatibility hook, :func:`rtplay.compat.aioice.gather_on`.

Browsers offer no candidate at all, an mDNS ``*.local`` name (every desktop browser's
default) or a LAN address. Those are dropped, and when none is left the offer loses its
``a=end-of-candidates`` too: aioice then keeps waiting, answers the browser's connectivity
checks on our loopback candidate and learns the browser's address from them as a
peer-reflexive candidate (RFC 8445 §7.3.1.3). ICE only ever sends to an address from which a
check arrived on our socket; bound on loopback, that socket only hears this host (a packet for
127.0.0.0/8 arriving on any other interface is a martian the kernel drops), so nothing leaves
the machine unless the user bound the server elsewhere.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable

LOOPBACK = "127.0.0.1"

WILDCARDS = frozenset({"", "0.0.0.0", "::"})
"""Bind addresses meaning "every interface": ICE then gathers on every interface too."""

#: RFC 8840 §4.1: no more candidates follow. Removed when no usable candidate is left, so
#: that ICE keeps waiting for the peer's checks and learns its address from them.
END_OF_CANDIDATES = "a=end-of-candidates"


def host_addresses(bind_host: str, everywhere: Callable[[], list[str]]) -> list[str]:
    """The addresses ICE may gather on for ``bind_host``: that address alone, or every
    interface (``everywhere()``, which aioice computes without loopback) plus loopback."""
    if bind_host in WILDCARDS:
        return [LOOPBACK, *everywhere()]
    return [bind_host]



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

    Non-UDP (TCP) candidates are removed too: aioice only speaks UDP. When no candidate is
    left, ``a=end-of-candidates`` goes too, so ICE waits to learn the peer's address.
    """
    kept: list[str] = []
    removed: list[str] = []
    for line in sdp.splitlines():
        cand = _candidate_address(line.strip())
        if cand is not None and (cand[0] != "udp" or not address_allowed(cand[1], host)):
            removed.append(cand[1])
            continue
        kept.append(line)
    if not candidate_addresses("\n".join(kept)):
        kept = [line for line in kept if line.strip() != END_OF_CANDIDATES]
    return "\r\n".join(kept) + "\r\n", removed


def ensure_on_host(sdp: str, host: str) -> None:
    """Raise RuntimeError if our own SDP offers a candidate that is not on ``host``."""
    stray = [a for a in candidate_addresses(sdp) if not address_allowed(a, host)]
    if stray:
        raise RuntimeError(f"ICE gathered off the bind address {host}: {', '.join(stray)}")
    if not candidate_addresses(sdp):
        raise RuntimeError(f"ICE gathered no candidate on {host}")
