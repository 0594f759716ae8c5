"""The server process: ``python -m servers [--rate R] [--control-port P] … [--watch-stdin]``.

``rtplay serve`` is this process; ``rtplay`` and ``rtplay run`` spawn it. Once every listener
is up it prints a human-readable summary; a spawning parent passes ``--ready-fd N`` and gets
one line on that file descriptor instead, ``RTPLAY-READY {json}`` (the control URL and the
endpoints, as ``GET /control/status`` has them) — a hand-off that never reaches a terminal. It stops on SIGINT or
SIGTERM and, with ``--watch-stdin``, when its standard input reaches end of file — which
is how a spawning parent that dies, however it dies, takes its server with it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import signal
import stat
import sys

from rtplay.compat import LIBRARIES, IncompatibleLibrary, check_all
from rtplay.protocol.options import READY_PREFIX, add_arguments, add_http_arguments, from_namespace
from rtplay.runtime import eventloop
from rtplay.runtime.gcpolicy import use_server_thresholds
from rtplay.runtime.process import raise_open_files_limit
from rtplay.runtime.token import TOKEN_HEADER, token_path, write_token
from servers.runner import WEBRTC_LIBRARIES, Server, ServerConfig

log = logging.getLogger("servers")

async def _load_webrtc(server: Server, stop: asyncio.Event, failures: list[Exception]) -> None:
    try:
        await server.load_webrtc()
    except Exception as exc:  # as fatal as it was before the ready line: stop, then raise it
        failures.append(exc)
        stop.set()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rtplay serve", description="run only the built-in server")
    add_arguments(parser)
    add_http_arguments(parser)
    parser.add_argument("--watch-stdin", action="store_true", help="stop when standard input closes (spawned)")
    parser.add_argument(
        "--ready-fd", type=int, default=None, metavar="N",
        help="write the RTPLAY-READY line for a spawning parent on this file descriptor, then close it",
    )
    parser.add_argument("-v", "--verbose", action="count", default=0, help="log more (-vv for debug)")
    return parser


def summary(server: Server) -> list[str]:
    """What a person reading the terminal wants: where each transport listens."""
    url = server.http_url
    ws_url = "ws" + url.removeprefix("http")
    return [
        f"rtplay server publishing {server.publisher.rate:g} msg/s on {server.config.host}",
        f"  poll       GET  {url}/poll?since=0",
        f"  longpoll   GET  {url}/longpoll?since=0&timeout=25",
        f"  sse        GET  {url}/sse   (Last-Event-ID or ?lastEventId=)",
        f"  ws              {ws_url}/ws?since=0",
        f"  wt   CONNECT    {server.wt_url}?since=0   (HTTP/3 on UDP {server.quic_port})",
        f"                  certificate SHA-256 {server.cert.sha256_hex}",
        f"  rtc        POST {url}/rtc/offer?since=0   (JSON {{sdp, type: offer}} -> answer)",
        f"  page            {url}/   (your browser as a client of every transport)",
        f"  control         {server.control_url}/status   /faults   /rate   /drop   /events   (GET {server.control_url}: the API)",
        f"                  token {server.guard.token}   ({TOKEN_HEADER} header; "
        + ("required: bound beyond loopback)" if server.guard.require_token else "needed beyond loopback only)"),
        "Ctrl-C stops it.",
    ]


def stdin_is_a_pipe() -> bool:
    """Only a pipe (or socket) can be watched for EOF by the event loop."""
    try:
        mode = os.fstat(sys.stdin.fileno()).st_mode
    except (OSError, ValueError):
        return False
    return stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode)


async def _stdin_closed(stop: asyncio.Event) -> None:
    """Set ``stop`` when standard input reaches EOF (the parent is gone or let go)."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while await reader.read(4096):
        pass
    stop.set()


def hand_off(ready_fd: int, endpoints: dict[str, object]) -> None:
    """Give the spawning parent the ready line on its own pipe, and close that pipe."""
    try:
        with os.fdopen(ready_fd, "w", encoding="utf-8") as pipe:
            pipe.write(f"{READY_PREFIX} {json.dumps(endpoints)}\n")
    except OSError as exc:  # the parent is gone: --watch-stdin ends this process too
        log.warning("could not hand the ready line over on fd %d: %s", ready_fd, exc)


async def serve(config: ServerConfig, watch_stdin: bool, ready_fd: int | None = None) -> None:
    """Run the server until SIGINT/SIGTERM or (``watch_stdin``) standard input's end."""
    server = Server(config)
    await server.start()
    token_file = token_path(server.control.port)
    try:
        write_token(token_file, server.guard.token, server.control.host, server.control.port)  # where the user's own tools can read it
    except OSError as exc:
        log.warning("cannot store the control token in %s: %s", token_file, exc)
    stop = asyncio.Event()
    if watch_stdin and not stdin_is_a_pipe():
        log.warning("--watch-stdin: standard input is not a pipe; not watching it")
        watch_stdin = False
    watcher = asyncio.create_task(_stdin_closed(stop)) if watch_stdin else None
    failures: list[Exception] = []
    late: asyncio.Task[None] | None = None
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):  # before the summary says "Ctrl-C stops it"
        loop.add_signal_handler(sig, stop.set)
    try:
        if ready_fd is not None:
            hand_off(ready_fd, server.status()["endpoints"])
        late = asyncio.create_task(_load_webrtc(server, stop, failures))  # after the ready line
        if ready_fd is None:  # a person runs it: where to connect
            print("\n".join(summary(server)), flush=True)
        await stop.wait()
    finally:
        if watcher is not None:
            watcher.cancel()
            await asyncio.gather(watcher, return_exceptions=True)
        if late is not None:  # its thread cannot be cancelled; an import ends soon anyway
            await asyncio.wait([late])
        token_file.unlink(missing_ok=True)
        await server.stop()
    if failures:
        raise failures[0]


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    level = {0: logging.WARNING, 1: logging.INFO}.get(args.verbose, logging.DEBUG)
    logging.basicConfig(level=level, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    try:
        check_all([name for name in LIBRARIES if name not in WEBRTC_LIBRARIES])
        raise_open_files_limit()  # a socket per client: the connection cap is this limit less a reserve
        use_server_thresholds()  # thousands of held requests must not set off a full collection a wave
        eventloop.run(serve(ServerConfig.from_options(from_namespace(args)), args.watch_stdin, args.ready_fd))
    except (IncompatibleLibrary, ValueError) as exc:  # ValueError: an unknown RTPLAY_LOOP
        print(f"rtplay serve: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"rtplay serve: cannot listen: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
