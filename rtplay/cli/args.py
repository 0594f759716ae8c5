"""The command line's grammar: ``rtplay``'s parser, its subcommands' flags and their value types.

Kept apart from :mod:`rtplay.cli.main`, which runs what the parsed arguments ask for.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from importlib import metadata
from pathlib import Path

from rtplay.cli import scenario as scenario_module
from rtplay.model import faultspec, identity
from rtplay.model.crowd import MAX_CLIENTS  # not crowd_pool: that loads every client library
from rtplay.model.faultspec import FaultSpec, FaultSpecError, parse_fault
from rtplay.model.retry_spec import PolicySpec, RetrySpecError, parse_assignment
from rtplay.protocol.faults import TRANSPORTS
from rtplay.protocol.options import add_arguments, port, rate

#: Transports whose client reconnects by a retry policy (poll polls on its fixed interval).
RETRYING_TRANSPORTS = [t for t in TRANSPORTS if t != "poll"]


def positive_float(text: str) -> float:
    try:
        value = float(text.removesuffix("s"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not 0 < value < math.inf:
        raise argparse.ArgumentTypeError(f"must be a number > 0, got {text!r}")
    return value


def transports(text: str) -> list[str]:
    known = list(TRANSPORTS)
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


def add_attach_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--server", metavar="URL", default=None,
        help="attach to a running `rtplay serve`: its control URL (http://host:port/control) instead of starting one",
    )
    parser.add_argument(
        "--token", default=None,
        help="with --server: the control token `rtplay serve` printed (needed when it is bound beyond "
        "loopback; default $RTPLAY_TOKEN, else the token file it wrote on this machine)",
    )


def retry_flag(text: str) -> tuple[str, PolicySpec]:
    try:
        return parse_assignment(text, RETRYING_TRANSPORTS)
    except RetrySpecError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def crowd_size(text: str) -> int:
    if not text.isdigit() or not 0 <= int(text) <= MAX_CLIENTS:
        raise argparse.ArgumentTypeError(f"expected 0-{MAX_CLIENTS} clients per transport, got {text!r}")
    return int(text)


def add_client_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--retry", type=retry_flag, action="append", default=[], metavar="TRANSPORT=POLICY",
        help="a transport's retry policy: fixed:SECONDS, immediate, eventsource, socketio, "
        "exponential[:none|full|equal|decorrelated][,base=S,cap=S,factor=F] (repeatable)",
    )
    parser.add_argument(
        "--clients", type=crowd_size, default=None, metavar="N",
        help="also run N lightweight clients per transport (a crowd; figures aggregated)",
    )
    parser.add_argument(
        "--cluster", metavar="tcp://HOST:8786", default=None,
        help="run the crowd (--clients) on this Dask scheduler's workers (`dask scheduler`, then "
        "`dask worker tcp://HOST:8786` on each client host) instead of a local cluster of one worker per core",
    )


def _identity_flag(what: str) -> Callable[[str], tuple[str, str]]:
    def parse(text: str) -> tuple[str, str]:
        try:
            transport, value = identity.parse_assignment(text, what)
            {"--seq": identity.parse_seq, "--time": identity.parse_time, "--resume": identity.parse_resume}[what](value)
        except identity.IdentityError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
        return transport, value
    return parse


def target_flag(text: str) -> tuple[str, str]:
    try:
        return identity.parse_target(text)
    except identity.IdentityError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_target_flags(parser: argparse.ArgumentParser) -> None:
    """Target mode: rtplay's clients on the user's endpoints (see rtplay.model.identity)."""
    parser.add_argument(
        "--target", type=target_flag, action="append", default=[], metavar="TRANSPORT=URL",
        help="aim a client at your endpoint instead of rtplay's server: poll|longpoll|sse|ws=URL (repeatable)",
    )
    parser.add_argument(
        "--seq", type=_identity_flag("--seq"), action="append", default=[], metavar="TRANSPORT=SEQ",
        help="where a target message's seq is: sse-id (SSE's default), json:PATH, none",
    )
    parser.add_argument(
        "--time", type=_identity_flag("--time"), action="append", default=[], metavar="TRANSPORT=TIME",
        help="where a target message's send time is: json:PATH[:ms|s|iso] (clocks must agree), none",
    )
    parser.add_argument(
        "--resume", type=_identity_flag("--resume"), action="append", default=[], metavar="TRANSPORT=TEMPLATE",
        help="how a reconnect asks the target to resume, e.g. ws='?since={seq}'",
    )
    parser.add_argument(
        "--direct", action="store_true",
        help="target mode without rtplay's proxy: only client-side faults (drop, outage, offline) apply",
    )


def add_run_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "scenario", nargs="?", metavar="SCENARIO", help="a scenario file (.toml) or the name of a shipped one (--list)"
    )
    add_arguments(parser, rate_default=None)
    add_attach_flag(parser)
    parser.add_argument("--duration", type=positive_float, default=None, help="seconds to run (default 10)")
    parser.add_argument(
        "--transports", type=transports, default=None, help=f"comma-separated, default all: {','.join(list(TRANSPORTS))}"
    )
    parser.add_argument(
        "--fault", type=fault, action="append", default=[], metavar="SPEC",
        help="inject a fault, e.g. drop@3s, delay=300ms@5s-10s:sse, loss=20%%@2s-8s:wt (repeatable)",
    )
    add_client_flags(parser)
    parser.add_argument(
        "--seed", type=int, default=0,
        help="seed of the crowd clients' jitter (default 0); with --browser also of rtplay's and the page's retry "
        "jitter, which then draw the same numbers",
    )
    parser.add_argument("--json", type=Path, metavar="PATH", help="write the JSON report to PATH")
    parser.add_argument(
        "--log-messages", type=Path, metavar="FILE",
        help="write one JSON line per arrival and per connection change to FILE (to audit any figure, "
        "replay or report the run); a scenario with variants writes FILE-VARIANT.jsonl per variant",
    )
    parser.add_argument(
        "--html", type=Path, metavar="FILE",
        help="write the run's offline HTML report (charts, tables) to FILE, as `rtplay report` does",
    )
    parser.add_argument(
        "--junit", type=Path, metavar="FILE", help="write JUnit XML to FILE: one test case per expectation and comparison",
    )
    add_target_flags(parser)
    parser.add_argument("--wide", action="store_true", help="print every column of the table")
    parser.add_argument("--quiet", action="store_true", help="no live progress on stderr")
    parser.add_argument("--list", action="store_true", help="list the shipped scenarios and exit")
    parser.add_argument(
        "--browser", action="store_true", help="also run headless Chromium on the page; report it under \"browser\""
    )


EXIT_CODES = """\
exit codes:
  0  the run ended and every expectation of the scenario was met (or it had none)
  1  an expectation failed (each is printed as FAILED …)
  2  bad usage: an unknown flag, a bad fault spec, an unreadable or invalid scenario; or the
     run could not happen: a port in use, a server that could not be started or reached
  130  interrupted (Ctrl-C): the table and the JSON report cover the run so far ("partial")"""


def run_epilog() -> str:
    """``run --help``'s tail: the fault grammar and scenario keys (from the modules that parse
    them, so help and parser never disagree) and the exit codes."""
    grammar = (faultspec.__doc__ or "").split("\n", 1)[1].strip("\n")
    scenario_keys = (scenario_module.__doc__ or "").split("\n", 1)[1].strip("\n")
    return f"fault spec (--fault, scenario faults):\n{grammar}\n\nscenario file (TOML):\n{scenario_keys}\n\n{EXIT_CODES}"


#: Where ``rtplay --web`` serves the playground unless told otherwise.
DEFAULT_WEB_PORT = 8000


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rtplay",
        description="A playground for real-time web transports: poll, long-poll, SSE, WebSocket, "
        "WebTransport and WebRTC, with faults you inject and watch them recover from.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {version()}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="log more (-vv for debug)")
    parser.add_argument("--headless", action="store_true", help="the same as `rtplay run` (no UI)")
    parser.add_argument("--rate", type=rate, default=10.0, help="playground: messages per second (default 10)")
    add_attach_flag(parser)
    parser.add_argument(
        "--transports", type=transports, default=None, help="playground: comma-separated transports (default all)"
    )
    parser.add_argument(
        "--browser", action="store_true", help="playground: also run headless Chromium on the page, shown beside"
    )
    parser.add_argument("--http-port", type=port, default=0, help="playground: server TCP port (default 0 = any free)")
    parser.add_argument(
        "--quic-port", type=port, default=0, help="playground: server UDP port for HTTP/3 (default 0 = any free)"
    )
    parser.add_argument(
        "--web", action="store_true", help="serve the playground to a browser tab (textual-serve) instead of this terminal"
    )
    parser.add_argument(
        "--web-port", type=port, default=DEFAULT_WEB_PORT, help=f"port of --web's page (default {DEFAULT_WEB_PORT})"
    )
    parser.add_argument(
        "--record", type=Path, metavar="FILE", default=None,
        help="playground: record the session to FILE (the --log-messages format) for `rtplay replay` and `rtplay report`",
    )
    add_client_flags(parser)
    add_target_flags(parser)
    sub = parser.add_subparsers(dest="command", metavar="{run,report,replay,serve,proxy}")
    run = sub.add_parser(
        "run",
        help="run a session headless and print a report",
        description="Run a session without the UI, print a per-transport table, optionally write JSON.",
        epilog=run_epilog(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_run_flags(run)
    add_report_parsers(sub)
    serve = sub.add_parser("serve", help="run only the built-in server and print its URLs")
    add_arguments(serve)
    serve.add_argument("-v", "--verbose", action="count", default=argparse.SUPPRESS, help="log more (-vv for debug)")
    from rtplay.cli.proxy import add_proxy_parser

    add_proxy_parser(sub)
    return parser


def add_report_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """``rtplay report`` and ``rtplay replay``: what a kept run becomes."""
    report = sub.add_parser(
        "report", help="turn a run's JSON report (and its message log) into one offline HTML file",
        description="Write one self-contained HTML file (no network needed to open it) with interactive charts "
        "of a run: latency over time with the faults shaded, arrivals, losses, recovery, crowds, health.",
    )
    report.add_argument(
        "json", type=Path, metavar="RUN.json", nargs="?", default=None,
        help="the report `rtplay run --json` wrote (without it, the figures are rebuilt from --log)",
    )
    report.add_argument("--log", type=Path, metavar="LOG.jsonl", help="its --log-messages file (draws latency over time)")
    report.add_argument("-o", "--output", type=Path, metavar="FILE", required=True, help="the HTML file to write")
    replay = sub.add_parser(
        "replay", help="play a recorded run back in the playground (pause, seek, speed)",
        description="The playground on a recorded run (`rtplay run --log-messages`, `rtplay --record`): "
        "space pauses, left/right seek 5 s, [ and ] halve/double the speed, f jumps to the next fault.",
    )
    replay.add_argument("log", type=Path, metavar="LOG.jsonl", help="the recorded message log")
    replay.add_argument("--speed", type=positive_float, default=1.0, help="playback speed (default 1)")


def version() -> str:
    """The installed distribution's version."""
    try:
        return metadata.version("rtplay")
    except metadata.PackageNotFoundError:  # running from a source tree that is not installed
        return "unknown (not installed)"
