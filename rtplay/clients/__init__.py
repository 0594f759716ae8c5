"""One module per transport; :data:`CLIENTS` maps a transport name to its client factory."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from rtplay.clients.base import Client, Emit
from rtplay.clients.longpoll import LongPollClient
from rtplay.clients.poll import PollClient
from rtplay.clients.rtc import RTCClient
from rtplay.clients.sse import SSEClient
from rtplay.clients.ws import WebSocketClient
from rtplay.clients.wt import WebTransportClient


@dataclass(frozen=True)
class Endpoints:
    """Where the server listens, as a client needs to know it."""

    http_url: str
    """``http://127.0.0.1:PORT``"""
    quic_host: str = "127.0.0.1"
    quic_port: int = 0
    cert_der: bytes = b""
    """The server's certificate: the only one the WebTransport client trusts."""


Factory = Callable[[Endpoints, Emit, dict[str, Any]], Client]

CLIENTS: dict[str, Factory] = {
    "poll": lambda ep, emit, opts: PollClient(ep.http_url, emit, **opts),
    "longpoll": lambda ep, emit, opts: LongPollClient(ep.http_url, emit, **opts),
    "sse": lambda ep, emit, opts: SSEClient(ep.http_url, emit, **opts),
    "ws": lambda ep, emit, opts: WebSocketClient(ep.http_url, emit, **opts),
    "wt": lambda ep, emit, opts: WebTransportClient(ep.quic_host, ep.quic_port, ep.cert_der, emit, **opts),
    "rtc": lambda ep, emit, opts: RTCClient(ep.http_url, emit, **opts),
}

CLIENT_CLASSES: dict[str, type[Client]] = {
    "poll": PollClient, "longpoll": LongPollClient, "sse": SSEClient,
    "ws": WebSocketClient, "wt": WebTransportClient, "rtc": RTCClient,
}
"""The client class of each transport: its channels and which are unreliable (``rtplay replay``)."""
