"""One module per transport; :data:`CLIENTS` maps a transport name to its client factory.

A transport's module, and the library it drives, is imported the first time its client is
asked for: a crowd worker running WebSocket clients then loads websockets alone, not aiortc,
aioquic, aiohttp and httpx as well (about half a CPU-second of every worker's start).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from importlib import import_module
from typing import Any

from rtplay.clients.base import Client, Emit


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

#: Where each transport's client class lives: (module, class name).
CLIENT_MODULES: dict[str, tuple[str, str]] = {
    "poll": ("rtplay.clients.poll", "PollClient"),
    "longpoll": ("rtplay.clients.longpoll", "LongPollClient"),
    "sse": ("rtplay.clients.sse", "SSEClient"),
    "ws": ("rtplay.clients.ws", "WebSocketClient"),
    "wt": ("rtplay.clients.wt", "WebTransportClient"),
    "rtc": ("rtplay.clients.rtc", "RTCClient"),
}


def client_class(name: str) -> type[Client]:
    """The client class of transport ``name`` (its module imported now if it was not yet)."""
    module, attribute = CLIENT_MODULES[name]
    cls: type[Client] = getattr(import_module(module), attribute)
    return cls


class _ClientClasses(Mapping[str, type[Client]]):
    """The transports' client classes, each imported when first looked up."""

    def __getitem__(self, name: str) -> type[Client]:
        return client_class(name)

    def __iter__(self) -> Iterator[str]:
        return iter(CLIENT_MODULES)

    def __len__(self) -> int:
        return len(CLIENT_MODULES)


CLIENT_CLASSES: Mapping[str, type[Client]] = _ClientClasses()
"""The client class of each transport: its channels and which are unreliable (``rtplay replay``)."""


def _wt_client(ep: Endpoints, emit: Emit, opts: dict[str, Any]) -> Client:
    cls: Any = client_class("wt")  # it takes the QUIC address and certificate, not a URL
    client: Client = cls(ep.quic_host, ep.quic_port, ep.cert_der, emit, **opts)
    return client


def _factory(name: str) -> Factory:
    if name == "wt":
        return _wt_client
    return lambda ep, emit, opts: client_class(name)(ep.http_url, emit, **opts)


CLIENTS: dict[str, Factory] = {name: _factory(name) for name in CLIENT_MODULES}
"""The factory of each transport's client."""
