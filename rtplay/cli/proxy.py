"""``rtplay proxy UPSTREAM``: the fault proxy in front of the user's app, in the playground or
headless (``--headless --duration S --fault SPEC --json FILE``)."""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
from pathlib import Path
from typing import Any

from rtplay.model.faultspec import FaultSpecError
from rtplay.protocol.options import port
from rtplay.proxy import spec as proxy_spec
from rtplay.proxy.api import DEFAULT_API_PORT
from rtplay.proxy.proxy import FaultProxy, ProxyConfigError, parse_listen
from rtplay.proxy.run import DEFAULT_LISTEN, ProxyRun
from rtplay.proxy.spec import TimedToxic, parse_proxy_fault


def fault(text: str) -> TimedToxic:
    """An argparse type: a proxy fault spec (:mod:`rtplay.proxy.spec`)."""
    try:
        return parse_proxy_fault(text)
    except (FaultSpecError, ValueError) as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def duration(text: str) -> float:
    """An argparse type: seconds, more than 0 and finite."""
    try:
        value = float(text.removesuffix("s"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seconds, got {text!r}") from None
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be more than 0 seconds, got {text!r}")
    return value


def listen(text: str) -> str:
    """An argparse type: ``HOST:PORT``."""
    try:
        parse_listen(text)
    except ProxyConfigError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def add_proxy_parser(sub: Any) -> None:
    """The ``proxy`` subcommand's flags."""
    grammar = (proxy_spec.__doc__ or "").split("\n", 1)[1].strip("\n")
    parser = sub.add_parser(
        "proxy", help="a fault proxy in front of your own app (Toxiproxy's API on --api-port)",
        description="Proxy UPSTREAM (http://host:port or host:port): HTTP requests, SSE events and WebSocket "
        "messages pass through rtplay's faults and Toxiproxy's toxics; see what each client did.",
        epilog=f"fault spec (--fault):\n{grammar}", formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("upstream", metavar="UPSTREAM", help="your app: http://host:port (or host:port)")
    parser.add_argument(
        "--listen", type=listen, default=DEFAULT_LISTEN, help="HOST:PORT to listen on (default 127.0.0.1:0 = any free port)"
    )
    parser.add_argument("--name", default="app", help="the proxy's name in the API (default app)")
    parser.add_argument("--api-host", default="127.0.0.1", help="bind address of the Toxiproxy API (default 127.0.0.1)")
    parser.add_argument(
        "--api-port", type=port, default=DEFAULT_API_PORT, help=f"port of the Toxiproxy API (default {DEFAULT_API_PORT}; 0 = any free)"
    )
    parser.add_argument("--headless", action="store_true", help="no UI: run --duration seconds and print a report")
    parser.add_argument("--duration", type=duration, default=10.0, help="headless: seconds to run (default 10)")
    parser.add_argument(
        "--fault", type=fault, action="append", default=[], metavar="SPEC",
        help="a fault, e.g. delay=300ms:sse, drop@5s:sse, loss=20%%@2s-8s:ws (repeatable)",
    )
    parser.add_argument("--json", type=Path, metavar="PATH", help="headless: write the JSON report to PATH")
    parser.add_argument("--seed", type=int, default=None, help="seed of the faults' randomness (jitter, loss, toxicity)")


def table(report: dict[str, Any]) -> str:
    """The report's routes and clients as text."""
    lines = [f"{'path':24} {'kind':5} {'conns':>5} {'open':>4} {'refused':>7} {'msg/s':>7} {'+p50ms':>7} {'+p99ms':>7}  last error"]
    for r in report["wire"]["routes"]:
        p50, p99 = r["added_latency_p50_ms"], r["added_latency_p99_ms"]
        lines.append(
            f"{r['path'][:24]:24} {r['kind']:5} {r['connections']:5} {r['open']:4} {r['refused']:7} "
            f"{r['arrivals_per_s']:7.1f} {'-' if p50 is None else f'{p50:.1f}':>7} "
            f"{'-' if p99 is None else f'{p99:.1f}':>7}  {r['last_error'][:40]}"
        )
    for c in report["wire"]["clients"]:
        lines.append(f"client {c['address']} {c['path']}: {c['attempts']} attempts, {c['refused']} refused, {c['next_attempt']}")
        for d in c["decisions"][-5:]:
            gap = "first" if d["after_close_s"] is None else f"+{d['after_close_s']:.2f}s after close"
            lines.append(f"  {d['kind']:4} {gap:24} resume_from={d['resume_from']!r} refused={d['refused']}")
    return "\n".join(lines)


async def run_headless(run: ProxyRun, duration: float, stop: asyncio.Event) -> dict[str, Any]:
    """Run for ``duration`` seconds (or until ``stop``); the report."""
    await run.start()
    print(run.banner(), file=sys.stderr, flush=True)
    loop = asyncio.get_running_loop()
    started = loop.time()
    try:
        await asyncio.wait_for(stop.wait(), duration)
    except TimeoutError:
        pass  # the run's length
    report = run.report(loop.time() - started)
    await run.stop()
    return report


def cmd_proxy(args: argparse.Namespace) -> int:
    """``rtplay proxy``: 0, or 2 when the proxy cannot start."""
    from rtplay.runtime import eventloop

    run = ProxyRun(args.upstream, args.listen, args.name, args.api_host, args.api_port, args.fault, args.seed)
    try:
        FaultProxy(args.name, args.upstream)  # checks the upstream and name before anything opens
    except (ProxyConfigError, ValueError) as exc:
        print(f"rtplay proxy: {exc}", file=sys.stderr)
        return 2
    if not args.headless:
        from rtplay.tui.proxy_app import run_proxy_tui

        return run_proxy_tui(run)

    async def main() -> dict[str, Any]:
        stop = asyncio.Event()
        asyncio.get_running_loop().add_signal_handler(signal.SIGINT, stop.set)
        return await run_headless(run, args.duration, stop)

    try:
        report = eventloop.run(main())
    except OSError as exc:
        print(f"rtplay proxy: cannot listen: {exc.strerror or exc}", file=sys.stderr)
        return 2
    print(table(report))
    if args.json is not None:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
        print(f"report written to {args.json}", file=sys.stderr)
    return 0
