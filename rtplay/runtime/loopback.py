"""Whether a request's ``Host`` names this loopback listener: the one strict rule against DNS
rebinding, shared by every API rtplay serves (the server's ``/control``, the proxy's Toxiproxy API).

A page on the web can make the user's browser send requests to 127.0.0.1 by pointing its own
name at that address (DNS rebinding); the browser still sends the page's name and port in
``Host``. So a loopback listener answers only a ``Host`` that is exactly ``localhost`` or a
loopback IP literal (``127.0.0.0/8``, ``[::1]``) *and* names the port the request came in on.
A name that merely looks like loopback (``127.evil.example``, ``localhost.evil.example``) is a
DNS name like any other. Pure apart from reading a transport's socket name.
"""

from __future__ import annotations

import asyncio
import ipaddress
from urllib.parse import urlsplit

#: The port a ``Host`` without one means (RFC 9110 §4.2.1: the http scheme's default).
DEFAULT_HTTP_PORT = 80


def is_loopback_host(host: str) -> bool:
    """True for exactly the names of this machine's loopback: ``localhost`` and loopback IP
    literals (``127.0.0.0/8``, ``::1``, bracketed or not). A name that merely starts with
    ``127.`` (``127.evil.example``) is a DNS name like any other."""
    name = host.strip("[]").lower()
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def listener_port(transport: asyncio.BaseTransport | None) -> int | None:
    """The local port of the connection ``transport`` carries (the listener it came in on)."""
    sockname = transport.get_extra_info("sockname") if transport is not None else None
    return sockname[1] if isinstance(sockname, tuple) and len(sockname) >= 2 else None


def host_refusal(host: str, port: int | None) -> str | None:
    """Why a request with ``Host: host`` that arrived on local port ``port`` is not for this
    loopback listener, or None when it is.

    Only ``localhost`` and loopback IP literals pass, and only with the port the request
    arrived on (an absent port means 80): a rebinding page sends its own name and port.
    """
    try:
        url = urlsplit(f"//{host}")
        named_port = url.port or DEFAULT_HTTP_PORT
    except ValueError:
        return f"Host {host[:80]!r} is malformed"
    if not is_loopback_host(url.hostname or ""):
        return f"Host {host[:80]!r} is not a loopback name"
    if named_port != port:
        return f"Host {host[:80]!r} does not name this listener's port"
    return None
