"""``rtplay`` (the playground), ``rtplay run`` (headless) and ``rtplay serve`` (server only)."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import shlex
import signal
import socket
import sys
import tempfile
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

from rtplay.cli import preflight
from rtplay.cli.args import build_parser
from rtplay.cli.keep import cmd_report, run_log, write_html
from rtplay.cli.scenario import Scenario, ScenarioError, builtin_names, load_scenario
from rtplay.cli.variants import Variant
from rtplay.compat import ON_DEMAND, IncompatibleLibrary, check_all
from rtplay.engine.spawn import ServerProcess, SpawnError

# The clients, the session and the TUI are imported only once the server process has been
# launched, so that both processes load their libraries at the same time.
from rtplay.model.retry_spec import PolicySpec
from rtplay.protocol.faults import TRANSPORTS, validate_on_own_server
from rtplay.protocol.options import ServerOptions, from_namespace
from rtplay.runtime import eventloop

log = logging.getLogger(__name__)

T = TypeVar("T")

def apply_retry(client_options: dict[str, dict[str, Any]], retry: list[tuple[str, PolicySpec]]) -> None:
    """``--retry`` on top of a scenario's per-transport options."""
    for transport, spec in retry:
        client_options.setdefault(transport, {})["retry"] = spec


def build_scenario(args: argparse.Namespace) -> Scenario:
    """The scenario to run: a file or shipped one, with command-line flags taking precedence."""
    scenario = load_scenario(args.scenario) if args.scenario else Scenario(name="command line", transports=list(TRANSPORTS))
    if args.transports is not None:
        scenario.transports = args.transports
        # Expectations about transports the user left out do not apply to this run.
        scenario.expectations = [e for e in scenario.expectations if e.transport in args.transports]
    if args.rate is not None:
        scenario.rate = args.rate
    if args.duration is not None:
        scenario.duration = args.duration
    scenario.faults = scenario.faults + args.fault
    apply_retry(scenario.client_options, args.retry)
    if args.clients is not None:
        scenario.crowd = args.clients
    if (problem := scenario.crowd_problem()) is not None:
        raise ScenarioError(problem)
    for spec in scenario.faults:
        if spec.start >= scenario.duration:
            raise ScenarioError(f"fault {spec} starts at {spec.start:g} s, after the run ends ({scenario.duration:g} s)")
    missing = [t for t in scenario.transports if t not in list(TRANSPORTS)]
    if missing:
        raise ScenarioError(f"{scenario.name}: transport(s) {', '.join(missing)} not available in this installation")
    return scenario


def list_scenarios() -> int:
    names = builtin_names()
    width = max(map(len, names), default=0)
    for name in names:
        scenario = load_scenario(name)
        summary = " ".join(scenario.description.split()).split(". ")[0].rstrip(".")
        print(f"{name:{width}} {summary}.")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    if args.list:
        return list_scenarios()
    try:
        scenario = build_scenario(args)
        if args.target or scenario.targets:
            return cmd_target_run(args, scenario)
        for spec in scenario.faults:
            validate_on_own_server(spec.kind, spec.scope)
        server = from_namespace(args)
        server.rate = scenario.rate
        server.http = scenario.http_options()
        config_url = control_url(args.server)
    except (ScenarioError, ValueError) as exc:
        print(f"rtplay run: {exc}", file=sys.stderr)
        return 2
    if (problem := run_preflight(args, server, config_url)) is not None:
        print(f"rtplay run: {problem}", file=sys.stderr)
        return 2
    if scenario.description:
        print(f"scenario {scenario.name}: {' '.join(scenario.description.split())}", file=sys.stderr)
    reports: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="rtplay-run-") as scratch:
        logs: dict[str, Path | None] = {}
        variants: list[Variant | None] = [*scenario.variants] or [None]
        for variant in variants:
            name = variant.name if variant is not None else ""
            if variant is not None:
                policies = ", ".join(f"{t}={p}" for t, p in variant.retry.items())
                print(f"variant {variant.name}: {policies}", file=sys.stderr)
                print(f"\nvariant {variant.name}")
                apply_retry(scenario.client_options, list(variant.retry.items()))
            logs[name] = run_log(args, name, Path(scratch))
            report = run_once(args, scenario, server, config_url, logs[name])
            if isinstance(report, int):
                return report
            reports[name] = report
            if report.get("partial"):  # Ctrl-C: no further variants
                break
        code = check_reports(args, scenario, reports)
        if args.html is not None:
            write_html(args.html, reports, logs, scenario)
    return code


def cmd_target_run(args: argparse.Namespace, scenario: Scenario) -> int:
    """``rtplay run --target …`` (or a scenario with a ``[target]`` table): exit 2 when the
    run cannot happen (a bad adapter, a fault needing the proxy, a target that is down)."""
    from rtplay.cli.target_run import TargetRunOptions, run_targets
    from rtplay.engine.target_session import TargetError, check_crowd, check_faults
    from rtplay.model.identity import IdentityError

    ignored = [flag for flag, given in (("--log-messages", args.log_messages), ("--browser", args.browser),
               ("--server", args.server), ("--transports", args.transports), ("--rate", args.rate)) if given]
    if ignored:
        print(f"rtplay run: {', '.join(ignored)} cannot apply in target mode (your server publishes and "
              "--target names the transports)", file=sys.stderr)
        return 2
    try:
        config = target_config(args, scenario.targets, scenario.client_options)
        config.crowd, config.crowd_seed = scenario.crowd, args.seed
        check_crowd(config.crowd)
        check_faults(scenario.faults, config.targets, direct=args.direct)
    except (IdentityError, TargetError) as exc:
        print(f"rtplay run: {exc}", file=sys.stderr)
        return 2
    options = TargetRunOptions(duration=scenario.duration, json_path=None, progress=not args.quiet)
    report = eventloop.run(_interruptible(run_targets(config, options, scenario.faults), options))
    if isinstance(report, str):
        print(f"rtplay run: {report}", file=sys.stderr)
        return 2
    return check_reports(args, scenario, {"": report})


def target_config(
    args: argparse.Namespace, tables: dict[str, dict[str, str]], client_options: dict[str, dict[str, Any]]
) -> Any:
    """The target session's config from a scenario's ``[target]`` tables and the flags
    (IdentityError naming the problem)."""
    from rtplay.cli.target_scenario import identities, merge
    from rtplay.engine.target_session import TargetConfig
    from rtplay.model.identity import IdentityError

    merged = merge(tables, args.target, args.seq, args.time, args.resume)
    missing = [t for t, keys in merged.items() if "url" not in keys]
    if missing:
        raise IdentityError(f"no --target {missing[0]}=URL")
    targets = {t: keys["url"] for t, keys in merged.items()}
    return TargetConfig(targets, identities(merged), client_options, direct=args.direct)


def cmd_target_tui(args: argparse.Namespace) -> int:
    """``rtplay --target …``: the playground with a pane per target."""
    from rtplay.engine.session import SessionConfig
    from rtplay.engine.target_session import TargetError, TargetSession, check_crowd, unreachable
    from rtplay.model.identity import IdentityError
    from rtplay.tui.app import run_tui
    from rtplay.tui.target_backend import TargetBackend

    options: dict[str, dict[str, Any]] = {}
    apply_retry(options, args.retry)
    try:
        config = target_config(args, {}, options)
        config.crowd = args.clients or 0
        check_crowd(config.crowd)
    except (IdentityError, TargetError) as exc:
        print(f"rtplay: {exc}", file=sys.stderr)
        return 2
    problems = eventloop.run(unreachable(config.targets))
    if problems:
        print(f"rtplay: {'; '.join(problems)}", file=sys.stderr)
        return 2
    return run_tui(SessionConfig(transports=list(config.targets)), backend=TargetBackend(TargetSession(config)))


def run_preflight(args: argparse.Namespace, server: ServerOptions, config_url: str | None) -> str | None:
    """What would make the run fail after it started (an unwritable report, a port in use,
    a Chromium that is not there), found before it starts; None when nothing would."""
    problems = [
        *(preflight.unwritable(path, flag) for path, flag in ((args.json, "--json"), (args.log_messages, "--log-messages")) if path),
        *(() if config_url else server_port_problems(server)),
        preflight.bad_chromium(os.environ) if args.browser else None,
    ]
    return next((p for p in problems if p is not None), None)


def server_port_problems(server: ServerOptions) -> list[str | None]:
    """The ports the spawned server will listen on, checked now (0, any free one, always fits)."""
    return [
        preflight.port_taken(server.host, server.http_port, "--http-port"),
        preflight.port_taken(server.host, server.quic_port, "--quic-port", socket.SOCK_DGRAM),
        preflight.port_taken(server.host, server.control_port, "--control-port"),
    ]


def run_once(
    args: argparse.Namespace, scenario: Scenario, server: ServerOptions, config_url: str | None, log: Path | None
) -> dict[str, Any] | int:
    """One session (its own server unless attaching): the report, or an exit code."""
    launched = ServerProcess.launch(server) if config_url is None else None
    try:
        if (code := check_libraries()) != 0:
            return code
        from rtplay.cli.headless import HeadlessOptions, run_headless
        from rtplay.engine.browser import BrowserUnavailable
        from rtplay.engine.control_client import ControlError
        from rtplay.engine.crowd_cluster import ClusterUnreachable
        from rtplay.engine.session import SessionConfig

        config = SessionConfig(
            transports=scenario.transports, server=server, server_url=config_url, token=args.token, launched=launched,
            client_options=scenario.client_options, crowd=scenario.crowd, crowd_seed=args.seed,
            crowd_cluster=args.cluster,
            log_messages=log,
        )
        options = HeadlessOptions(
            duration=scenario.duration, json_path=None, progress=not args.quiet, browser=args.browser,
            wide=args.wide,
        )
        try:
            return eventloop.run(_interruptible(run_headless(config, options, scenario.faults), options))
        except BrowserUnavailable as exc:
            print(f"rtplay run --browser: {exc}", file=sys.stderr)
            return 2
        except (SpawnError, ControlError, ClusterUnreachable) as exc:  # e.g. a port in use: the run could not happen
            print(f"rtplay run: {exc}", file=sys.stderr)
            return 2  # 1 means failed expectations
    finally:
        if launched is not None:
            launched.stop_now()  # the session stopped it already; this covers a failure before


def check_reports(args: argparse.Namespace, scenario: Scenario, reports: dict[str, dict[str, Any]]) -> int:
    """Write the JSON, check expectations (per variant) and comparisons; the exit code."""
    failures: list[str] = []
    for name, report in reports.items():
        failures += [f"{name + ': ' if name else ''}{f}" for f in scenario.check(report)]
    failures += [m for c in scenario.comparisons if (m := c.check(reports)) is not None]
    if args.json is not None:
        args.json.write_text(json.dumps(reports[""] if "" in reports else {"variants": reports}, indent=2) + "\n")
        print(f"report written to {args.json}", file=sys.stderr)
    if args.junit is not None:
        from rtplay.cli.junit import junit_xml

        args.junit.write_text(junit_xml(scenario, reports))
        print(f"JUnit XML written to {args.junit}", file=sys.stderr)
    if any(r.get("partial") for r in reports.values()):
        print("rtplay run: interrupted; the report covers the run so far (partial)", file=sys.stderr)
        return 130  # 128 + SIGINT, as a shell reports Ctrl-C
    for failure in failures:
        print(f"FAILED {failure}", file=sys.stderr)
    checks = len(scenario.expectations) * len(reports) + len(scenario.comparisons)
    if checks and not failures:
        print(f"all {checks} expectations met", file=sys.stderr)
    return 1 if failures else 0


async def _interruptible(run: Coroutine[Any, Any, T], options: Any) -> T:
    """Run ``run`` with Ctrl-C ending it early (cleanly, report and all) instead of a traceback:
    ``options`` is the run's ``HeadlessOptions``, whose ``stop`` the signal sets."""
    loop = asyncio.get_running_loop()
    options.stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGINT, options.stop.set)
    try:
        return await run
    finally:
        loop.remove_signal_handler(signal.SIGINT)


def control_url(url: str | None) -> str | None:
    """``--server``: a control URL, given with or without its ``/control`` path."""
    if url is None:
        return None
    if not url.startswith(("http://", "https://")):
        raise ValueError(f"--server wants the control URL of `rtplay serve` (http://host:port/control), got {url!r}")
    url = url.rstrip("/")
    return url if url.endswith("/control") else url + "/control"


def cmd_serve(argv: list[str]) -> int:
    """``rtplay serve`` is the server process: become ``python -m servers`` with the same flags."""
    os.execv(sys.executable, [sys.executable, "-m", "servers", *argv])
    return 1  # not reached


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if "--headless" in argv and argv[:1] != ["proxy"]:  # `rtplay --headless …` is `rtplay run …`
        argv.remove("--headless")
        argv.insert(0, "run")
    parser = build_parser()
    args = parser.parse_args(argv)
    args.argv = argv
    try:
        eventloop.loop_name()
    except ValueError as exc:
        print(f"rtplay: {exc}", file=sys.stderr)
        return 2
    level = {0: logging.WARNING, 1: logging.INFO}.get(args.verbose, logging.DEBUG)
    logging.basicConfig(level=level, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    if args.command == "serve":
        flags = [a for a in argv[argv.index("serve") + 1 :] if a not in ("-v", "-vv", "--verbose")]
        return cmd_serve(flags + ["-v"] * args.verbose)
    if args.command == "run":
        return cmd_run(args)
    if args.command == "proxy":
        from rtplay.cli.proxy import cmd_proxy

        return cmd_proxy(args)
    if args.command == "report":
        return cmd_report(args)  # rtplay.cli.keep: reports a run can be kept as
    if args.command == "replay":
        return cmd_replay(args)
    return cmd_tui(args)


def cmd_replay(args: argparse.Namespace) -> int:
    """``rtplay replay LOG.jsonl``: the playground driven from a recorded run."""
    if not sys.stdout.isatty() and not os.environ.get("TEXTUAL_DRIVER"):
        print("rtplay replay: the playground needs a terminal", file=sys.stderr)
        return 2
    from rtplay.tui.replay import run_replay

    try:
        return run_replay(args.log, args.speed)
    except (OSError, ValueError) as exc:
        print(f"rtplay replay: {exc}", file=sys.stderr)
        return 2


def check_libraries() -> int:
    """Fail now, clearly, if a library lacks an internal we read (2), else 0."""
    try:
        check_all()
    except IncompatibleLibrary as exc:
        print(f"rtplay: {exc}", file=sys.stderr)
        return 2
    return 0


def tui_preflight(args: argparse.Namespace) -> str | None:
    """What would stop the playground (or its --web page) once started, found before it starts."""
    if args.web:
        return preflight.port_taken("127.0.0.1", args.web_port, "--web-port")
    problems = [] if args.server else server_port_problems(ServerOptions(http_port=args.http_port, quic_port=args.quic_port))
    problems.append(preflight.bad_chromium(os.environ) if args.browser else None)
    return next((p for p in problems if p is not None), None)


def cmd_tui(args: argparse.Namespace) -> int:
    if (problem := tui_preflight(args)) is not None:
        print(f"rtplay: {problem}", file=sys.stderr)
        return 2
    if args.web:
        return cmd_web(args)
    if args.target:
        if not sys.stdout.isatty() and not os.environ.get("TEXTUAL_DRIVER"):
            print("rtplay: the playground needs a terminal; use `rtplay run --target` for headless mode",
                  file=sys.stderr)
            return 2
        return cmd_target_tui(args)
    # textual-serve runs the playground with its web driver, on pipes rather than a terminal.
    if not sys.stdout.isatty() and not os.environ.get("TEXTUAL_DRIVER"):
        print("rtplay: the playground needs a terminal; use `rtplay run` for headless mode", file=sys.stderr)
        return 2
    try:
        url = control_url(args.server)
    except ValueError as exc:
        print(f"rtplay: {exc}", file=sys.stderr)
        return 2
    log_path = Path(os.environ.get("TMPDIR", "/tmp")) / f"rtplay-server-{os.getpid()}.log"
    with log_path.open("w") as server_log:  # the server's log must not scribble over the UI
        options = ServerOptions(rate=args.rate, http_port=args.http_port, quic_port=args.quic_port)
        launched = ServerProcess.launch(options, server_log) if url is None else None
        try:
            if (code := check_libraries()) != 0:
                return code
            from rtplay.engine.session import SessionConfig
            from rtplay.tui.app import run_tui  # Textual loads only for the playground

            config = SessionConfig(
                transports=args.transports or list(TRANSPORTS), server=options, server_url=url, token=args.token,
                server_stderr=server_log, launched=launched, crowd=args.clients or 0, log_messages=args.record,
                crowd_cluster=args.cluster, retry_seed=0 if args.browser else None,  # the page draws as the panes
            )
            apply_retry(config.client_options, args.retry)
            code = run_tui(config, browser=args.browser)
        finally:
            if launched is not None:
                launched.stop_now()
    if log_path.stat().st_size == 0:
        log_path.unlink()
    else:
        print(f"the server logged to {log_path}", file=sys.stderr)
    return code


def web_command(argv: list[str]) -> str:
    """The command textual-serve runs per browser tab: this playground, minus the --web flags."""
    kept: list[str] = []
    skip = False
    for arg in argv:
        if skip:
            skip = False
            continue
        if arg == "--web":
            continue
        if arg == "--web-port":
            skip = True
            continue
        if arg.startswith("--web-port="):
            continue
        kept.append(arg)
    return shlex.join([sys.executable, "-m", "rtplay.cli.main", *kept])


def cmd_web(args: argparse.Namespace) -> int:
    """Serve the playground to a browser tab: each tab runs its own session (textual-serve)."""
    try:
        check_all(ON_DEMAND)
    except IncompatibleLibrary as exc:
        print(f"rtplay: {exc}", file=sys.stderr)
        return 2
    from rtplay.cli.web import LocalWebServer as WebServer

    command = web_command(args.argv)

    def listening() -> None:  # said once the page can be reached: a script may open it at once
        print(f"rtplay playground in a browser: http://127.0.0.1:{args.web_port}  (Ctrl-C stops it)", flush=True)

    try:
        WebServer(command, host="127.0.0.1", port=args.web_port, title="rtplay").serve(on_listening=listening)
    except OSError as exc:  # taken between the check and the bind
        print(f"rtplay: --web-port {args.web_port}: cannot listen: {exc.strerror or exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # Ctrl-C is how it is stopped, as the line above says
        print("rtplay: the playground's page stopped", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
