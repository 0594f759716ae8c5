"""``rtplay`` (the playground), ``rtplay run`` (headless) and ``rtplay serve`` (server only)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import math
import signal
import sys
from pathlib import Path

from rtplay.browser import BrowserUnavailable
from rtplay.faultspec import FaultSpec, FaultSpecError, parse_fault
from rtplay.headless import HeadlessOptions, run_headless
from rtplay.protocol.compat import IncompatibleLibrary, check_all
from rtplay.scenario import Scenario, ScenarioError, builtin_names, load_scenario
from rtplay.session import SessionConfig, available_transports
from servers.runner import Server, ServerConfig

log = logging.getLogger(__name__)


def positive_float(text: str) -> float:
    try:
        value = float(text.removesuffix("s"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not 0 < value < math.inf:
        raise argparse.ArgumentTypeError(f"must be a number > 0, got {text!r}")
    return value


def rate(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected messages per second, got {text!r}") from None
    if not 0 <= value <= 100_000:
        raise argparse.ArgumentTypeError(f"rate must be 0-100000 msg/s, got {text!r}")
    return value


def port(text: str) -> int:
    if not text.isdigit() or not 0 <= int(text) <= 65535:
        raise argparse.ArgumentTypeError(f"expected a port 0-65535 (0 = any free), got {text!r}")
    return int(text)


def transports(text: str) -> list[str]:
    known = available_transports()
    names = [t.strip() for t in text.split(",") if t.strip()]
    if names == ["all"]:
        return known
    unknown = [n for n in names if n not in known]
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"unknown transport {', '.join(unknown) or '(none)'}: choose from {','.join(known)} or all"
        )
    return list(dict.fromkeys(names))


def fault(text: str) -> FaultSpec:
    try:
        return parse_fault(text)
    except FaultSpecError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_server_flags(parser: argparse.ArgumentParser, rate_default: float | None = 10.0) -> None:
    parser.add_argument("--rate", type=rate, default=rate_default, help="messages per second (default 10; 0 = paused)")
    parser.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1)")
    parser.add_argument("--http-port", type=port, default=0, help="TCP port (default 0 = any free)")
    parser.add_argument("--quic-port", type=port, default=0, help="UDP port for HTTP/3 (default 0 = any free)")


def add_run_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "scenario", nargs="?", metavar="SCENARIO", help="a scenario file (.toml) or the name of a shipped one (--list)"
    )
    add_server_flags(parser, rate_default=None)
    parser.add_argument("--duration", type=positive_float, default=None, help="seconds to run (default 10)")
    parser.add_argument(
        "--transports", type=transports, default=None, help=f"comma-separated, default all: {','.join(available_transports())}"
    )
    parser.add_argument(
        "--fault", type=fault, action="append", default=[], metavar="SPEC",
        help="inject a fault, e.g. drop@3s, delay=300ms@5s-10s:sse, loss=20%%@2s-8s:wt (repeatable)",
    )
    parser.add_argument("--json", type=Path, metavar="PATH", help="write the JSON report to PATH")
    parser.add_argument("--quiet", action="store_true", help="no live progress on stderr")
    parser.add_argument("--list", action="store_true", help="list the shipped scenarios and exit")
    parser.add_argument(
        "--browser", action="store_true", help="also run headless Chromium on the page; report it under \"browser\""
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rtplay",
        description="A playground for real-time web transports: poll, long-poll, SSE, WebSocket, "
        "WebTransport and WebRTC, with faults you inject and watch them recover from.",
    )
    parser.add_argument("-v", "--verbose", action="count", default=0, help="log more (-vv for debug)")
    parser.add_argument("--headless", action="store_true", help="the same as `rtplay run` (no UI)")
    parser.add_argument("--rate", type=rate, default=10.0, help="playground: messages per second (default 10)")
    parser.add_argument(
        "--transports", type=transports, default=None, help="playground: comma-separated transports (default all)"
    )
    parser.add_argument(
        "--browser", action="store_true", help="playground: also run headless Chromium on the page, shown beside"
    )
    sub = parser.add_subparsers(dest="command", metavar="{run,serve}")
    run = sub.add_parser("run", help="run a session headless and print a report")
    add_run_flags(run)
    serve = sub.add_parser("serve", help="run only the built-in server and print its URLs")
    add_server_flags(serve)
    return parser


def server_config(args: argparse.Namespace) -> ServerConfig:
    return ServerConfig(host=args.host, http_port=args.http_port, quic_port=args.quic_port, rate=args.rate or 0.0)


def build_scenario(args: argparse.Namespace) -> Scenario:
    """The scenario to run: a file or shipped one, with command-line flags taking precedence."""
    scenario = load_scenario(args.scenario) if args.scenario else Scenario(name="command line", transports=available_transports())
    if args.transports is not None:
        scenario.transports = args.transports
        # Expectations about transports the user left out do not apply to this run.
        scenario.expectations = [e for e in scenario.expectations if e.transport in args.transports]
    if args.rate is not None:
        scenario.rate = args.rate
    if args.duration is not None:
        scenario.duration = args.duration
    scenario.faults = scenario.faults + args.fault
    for spec in scenario.faults:
        if spec.start >= scenario.duration:
            raise ScenarioError(f"fault {spec} starts at {spec.start:g} s, after the run ends ({scenario.duration:g} s)")
    missing = [t for t in scenario.transports if t not in available_transports()]
    if missing:
        raise ScenarioError(f"{scenario.name}: transport(s) {', '.join(missing)} not available in this installation")
    return scenario


def list_scenarios() -> int:
    for name in builtin_names():
        scenario = load_scenario(name)
        summary = " ".join(scenario.description.split()).split(". ")[0].rstrip(".")
        print(f"{name:10} {summary}.")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    if args.list:
        return list_scenarios()
    try:
        scenario = build_scenario(args)
        server = server_config(args)
        server.rate = scenario.rate
        server.http = scenario.http_config()
        config = SessionConfig(
            transports=scenario.transports, server=server, client_options=scenario.client_options
        )
    except (ScenarioError, ValueError) as exc:
        print(f"rtplay run: {exc}", file=sys.stderr)
        return 2
    if scenario.description:
        print(f"scenario {scenario.name}: {' '.join(scenario.description.split())}", file=sys.stderr)
    options = HeadlessOptions(
        duration=scenario.duration, json_path=args.json, progress=not args.quiet, browser=args.browser
    )
    try:
        report = asyncio.run(run_headless(config, options, scenario.faults))
    except BrowserUnavailable as exc:
        print(f"rtplay run --browser: {exc}", file=sys.stderr)
        return 2
    failures = scenario.check(report)
    for failure in failures:
        print(f"FAILED {failure}", file=sys.stderr)
    if scenario.expectations and not failures:
        print(f"all {len(scenario.expectations)} expectations met", file=sys.stderr)
    return 1 if failures else 0


async def serve_forever(config: ServerConfig) -> None:
    server = Server(config)
    await server.start()
    url = server.http_url
    ws_url = "ws" + url.removeprefix("http")
    print(f"rtplay server publishing {config.rate:g} msg/s on {config.host}", flush=True)
    print(f"  poll       GET  {url}/poll?since=0", flush=True)
    print(f"  longpoll   GET  {url}/longpoll?since=0&timeout=25", flush=True)
    print(f"  sse        GET  {url}/sse   (Last-Event-ID or ?lastEventId=)", flush=True)
    print(f"  ws              {ws_url}/ws?since=0", flush=True)
    print(f"  wt   CONNECT    {server.wt_url}?since=0   (HTTP/3 on UDP {server.quic_port})", flush=True)
    print(f"                  certificate SHA-256 {server.cert.sha256_hex}", flush=True)
    print(f"  rtc        POST {url}/rtc/offer?since=0   (JSON {{sdp, type: offer}} -> answer)", flush=True)
    print(f"  control         {url}/control/status   /control/faults   /control/rate", flush=True)
    print(f"  page            {url}/   (your browser as a client of every transport)", flush=True)
    print("Ctrl-C stops it.", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await server.stop()


def cmd_serve(args: argparse.Namespace) -> int:
    try:
        asyncio.run(serve_forever(server_config(args)))
    except OSError as exc:
        print(f"rtplay serve: cannot listen: {exc}", file=sys.stderr)
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if "--headless" in argv:  # `rtplay --headless …` is `rtplay run …`, for scripts
        argv.remove("--headless")
        argv.insert(0, "run")
    parser = build_parser()
    args = parser.parse_args(argv)
    level = {0: logging.WARNING, 1: logging.INFO}.get(args.verbose, logging.DEBUG)
    logging.basicConfig(level=level, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    try:
        check_all()  # fail now, clearly, if a library lacks an internal we read
    except IncompatibleLibrary as exc:
        print(f"rtplay: {exc}", file=sys.stderr)
        return 2
    if args.command == "serve":
        return cmd_serve(args)
    if args.command == "run":
        return cmd_run(args)
    return cmd_tui(args)


def cmd_tui(args: argparse.Namespace) -> int:
    if not sys.stdout.isatty():
        print("rtplay: the playground needs a terminal; use `rtplay run` for headless mode", file=sys.stderr)
        return 2
    from rtplay.tui.app import run_tui  # Textual loads only for the playground

    config = SessionConfig(
        transports=args.transports or available_transports(), server=ServerConfig(rate=args.rate)
    )
    return run_tui(config, browser=args.browser)


if __name__ == "__main__":
    sys.exit(main())
