"""The server process's options: names, defaults and ranges both sides agree on. Pure.

``rtplay`` spawns ``python -m servers`` with :meth:`ServerOptions.argv`; the server parses
them back with :func:`add_arguments` / :func:`from_namespace`. The child announces itself with
one line, :data:`READY_PREFIX` followed by JSON (its control URL and endpoints).
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field

#: Highest publish rate accepted: beyond it the hub, not the transports, is measured.
MAX_RATE = 100_000.0

#: The HTTP endpoints' knobs a scenario's ``[server]`` table may set, with their types.
HTTP_KNOBS: dict[str, type] = {
    "sse_retry_ms": int,
    "sse_heartbeat_s": float,
    "ws_heartbeat_s": float,
    "longpoll_timeout_s": float,
    "header_timeout_s": float,
    "idle_timeout_s": float,
    "stream_write_timeout_s": float,
}

#: The first word of the one line the server process prints once it is listening.
READY_PREFIX = "RTPLAY-READY"


@dataclass
class ServerOptions:
    """What a spawned server is told."""

    host: str = "127.0.0.1"
    """Bind address of every listener. Loopback unless the user asks otherwise."""
    http_port: int = 0
    """TCP port of /poll /longpoll /sse /ws /rtc; 0 = any free port."""
    quic_port: int = 0
    """UDP port of the HTTP/3 (WebTransport) listener; 0 = any free port."""
    control_port: int = 0
    """TCP port of the control API (its own listener); 0 = any free port."""
    rate: float = 10.0
    """Messages published per second; 0 = paused."""
    http: dict[str, float] = field(default_factory=dict)
    """Values for :data:`HTTP_KNOBS`."""

    def argv(self) -> list[str]:
        """These options as ``python -m servers`` arguments."""
        args = [
            "--host", self.host, "--http-port", str(self.http_port), "--quic-port", str(self.quic_port),
            "--control-port", str(self.control_port), "--rate", repr(float(self.rate)),
        ]
        for name, value in self.http.items():
            args += [f"--{name.replace('_', '-')}", str(HTTP_KNOBS[name](value))]
        return args


def port(text: str) -> int:
    """An argparse type: a TCP/UDP port, 0 = any free."""
    if not text.isdigit() or not 0 <= int(text) <= 65535:
        raise argparse.ArgumentTypeError(f"expected a port 0-65535 (0 = any free), got {text!r}")
    return int(text)


def rate(text: str) -> float:
    """An argparse type: messages per second, 0 to :data:`MAX_RATE`."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected messages per second, got {text!r}") from None
    if not 0 <= value <= MAX_RATE:
        raise argparse.ArgumentTypeError(f"rate must be 0-{MAX_RATE:g} msg/s, got {text!r}")
    return value


def add_arguments(parser: argparse.ArgumentParser, rate_default: float | None = 10.0) -> None:
    """The server's flags, shared by ``rtplay serve``, ``rtplay run`` and ``python -m servers``."""
    parser.add_argument("--rate", type=rate, default=rate_default, help="messages per second (default 10; 0 = paused)")
    parser.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1)")
    parser.add_argument("--http-port", type=port, default=0, help="TCP port (default 0 = any free)")
    parser.add_argument("--quic-port", type=port, default=0, help="UDP port for HTTP/3 (default 0 = any free)")
    parser.add_argument(
        "--control-port", type=port, default=0, help="TCP port of the control API, its own listener (default 0 = any free)"
    )


def add_http_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags for :data:`HTTP_KNOBS` (``--sse-retry-ms`` …), used by the spawned server."""
    for name, kind in HTTP_KNOBS.items():
        parser.add_argument(f"--{name.replace('_', '-')}", type=kind, default=None, help=argparse.SUPPRESS)


def from_namespace(args: argparse.Namespace) -> ServerOptions:
    """The options parsed by :func:`add_arguments` (and :func:`add_http_arguments`)."""
    http = {name: getattr(args, name) for name in HTTP_KNOBS if getattr(args, name, None) is not None}
    return ServerOptions(
        host=args.host, http_port=args.http_port, quic_port=args.quic_port,
        control_port=args.control_port, rate=args.rate or 0.0, http=http,
    )
