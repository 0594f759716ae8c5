"""The HTTP listener holds a crowd's connect storm in its accept queue instead of dropping SYNs."""

from __future__ import annotations

import socket
from urllib.parse import urlsplit

import pytest

from servers.http.limits import LISTEN_BACKLOG
from servers.runner import Server

#: Connections opened while the server's loop accepts none: far past aiohttp's default backlog of
#: 128, within the kernel's usual ``net.core.somaxconn`` (4096) and ours.
BURST = 1000

#: How long one connect may take: loopback completes a handshake in microseconds when the accept
#: queue has room; a SYN dropped at a full queue is sent again only after a second.
CONNECT_TIMEOUT_S = 0.5


def somaxconn() -> int:
    try:
        with open("/proc/sys/net/core/somaxconn") as f:
            return int(f.read())
    except OSError:
        return 4096


async def test_a_burst_of_connects_beyond_128_completes_while_the_server_is_busy(server: Server) -> None:
    if min(somaxconn(), LISTEN_BACKLOG) <= BURST:
        pytest.skip(f"net.core.somaxconn ({somaxconn()}) caps every listener's backlog below {BURST}")
    url = urlsplit(server.http_url)
    opened: list[socket.socket] = []
    try:
        # Blocking connects on the test's own thread: the server's loop (this one) accepts none
        # meanwhile, so every connection waits in the listener's accept queue.
        for _ in range(BURST):
            s = socket.create_connection((url.hostname, url.port), timeout=CONNECT_TIMEOUT_S)
            opened.append(s)
    finally:
        for s in opened:
            s.close()
    assert len(opened) == BURST
