"""Scenario files (TOML): rate, duration, transports, a fault timeline and expectations.

    description = "Every connection dropped at 3 s; resumable transports lose nothing."
    duration = 8              # seconds
    rate = 50                 # msg/s
    transports = ["poll", "longpoll", "sse", "ws"]    # or "all" (the default)
    faults = ["drop@3s", "delay=200ms@5s-7s:sse"]     # the --fault grammar
    crowd = 1000              # N lightweight clients per transport besides the pane's own
                              # (top-level keys come before the first [table])

    [server]                  # optional server knobs
    sse_retry_ms = 500
    ws_heartbeat_s = 10

    [clients.longpoll]        # optional client knobs (see CLIENT_KNOBS)
    retry_delay = 1
    [clients.ws]
    retry = "exponential:full"    # a named retry policy (rtplay.model.retry_spec), any reconnecting client

    [expect.sse]              # per transport, or [expect.all] for every transport
    lost = 0                  # a bare value means ==
    reconnects = ">= 1"       # or "OP NUMBER" with OP one of == != < <= > >=
    "latency_ms.p99" = "< 500"
    state = "failed"
    "channels.datagram.lost" = "> 0"
    "recovery.time_to_detect_s" = "< 3"   # the last fault record of this transport
    "crowd.peak_attempts_per_s" = "< 5000"  # with crowd = N

    [[variants]]              # run the whole scenario once per variant, each with its policies
    name = "no-jitter"
    retry = { ws = "exponential:none" }
    [[variants]]
    name = "full-jitter"
    retry = { ws = "exponential:full" }

    [compare]                 # across variants: "VARIANT OP FACTOR * VARIANT"
    "ws.crowd.peak_attempts_per_s" = "full-jitter <= 0.2 * no-jitter"

    [target.sse]              # target mode: your endpoints instead of rtplay's server
    url = "http://127.0.0.1:8081/events"    # (replaces transports; see --target --seq --time --resume)
    time = "json:sent_ms"
"""

from __future__ import annotations

import math
import operator
import re
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from rtplay.cli.target_scenario import parse_target_table
from rtplay.cli.variants import Comparison, Variant, VariantError, parse_comparisons, parse_variants
from rtplay.model.faultspec import FaultSpec, FaultSpecError, parse_fault
from rtplay.model.identity import IdentityError
from rtplay.model.retry import ExponentialBackoff, FixedDelay
from rtplay.model.retry_spec import RetrySpecError, parse_policy
from rtplay.protocol.faults import TRANSPORTS
from rtplay.protocol.options import HTTP_KNOBS

OPS: dict[str, Callable[[Any, Any], bool]] = {
    "==": operator.eq, "!=": operator.ne, "<=": operator.le, ">=": operator.ge, "<": operator.lt, ">": operator.gt,
}
_EXPECT = re.compile(r"^\s*(==|!=|<=|>=|<|>)\s*(-?\d+(?:\.\d+)?)\s*$")

TOP_KEYS = {
    "description", "duration", "rate", "transports", "faults", "server", "clients", "expect", "crowd", "variants",
    "compare", "target",
}
SERVER_KNOBS = HTTP_KNOBS


def _longpoll(knobs: dict[str, float]) -> dict[str, Any]:
    opts: dict[str, Any] = {}
    if "retry_delay" in knobs:
        opts["retry"] = FixedDelay(knobs["retry_delay"])
    if "hold" in knobs:
        opts["hold"] = knobs["hold"]
    return opts


def _backoff(knobs: dict[str, float], **extra: str) -> dict[str, Any]:
    opts: dict[str, Any] = {k: knobs[k] for k in ("ping_interval", "ping_timeout") if k in knobs}
    if "backoff_initial" in knobs or "backoff_max" in knobs:
        opts["retry"] = ExponentialBackoff(
            initial=knobs.get("backoff_initial", 1.0), maximum=knobs.get("backoff_max", 5.0)
        )
    return opts


_COUNTERS = ("delivered", "lost", "lost_to_reset", "duplicates", "out_of_order", "wire_bytes_per_msg")
_LATENCY = tuple(f"latency_ms.{p}" for p in ("p50", "p95", "p99", "max"))
CHANNEL_PATHS = frozenset((*_COUNTERS, *_LATENCY))
"""What a report names per channel (and per transport, for its first channel)."""
TRANSPORT_PATHS = CHANNEL_PATHS | {"state", "failed_reason", "connects", "reconnects", "downtime_s"}
CHANNELS: dict[str, tuple[str, ...]] = {"wt": ("stream", "datagram"), "rtc": ("reliable", "unreliable")}
"""The named channels of the transports that have more than one."""
RECOVERY_PATHS = frozenset(
    {"fault", "start_s", "end_s", "time_to_detect_s", "time_to_recover_s", "lost", "lost_to_reset",
     "duplicates", "replayed", "failed"}
)
STRING_PATHS = frozenset({"state", "failed_reason", "recovery.fault", "recovery.failed"})
"""Paths whose value is text: the only ones a bare string may be compared with."""


def path_error(transport: str, path: str) -> str | None:
    """Why ``path`` names nothing in ``transport``'s report entry, or None when it does."""
    parts = path.split(".")
    if parts[0] == "recovery":
        rest = ".".join(parts[1:])
        ok = rest in RECOVERY_PATHS or (
            len(parts) == 4 and parts[1] == "channels" and parts[2] in CHANNELS.get(transport, ())
            and parts[3] in ("lost", "lost_to_reset", "duplicates")
        )
    elif parts[0] == "crowd":  # --clients N figures (rtplay.model.crowd names them)
        ok = len(parts) == 2 and parts[1].isidentifier()
    elif parts[0] == "channels":
        ok = len(parts) >= 3 and parts[1] in CHANNELS.get(transport, ()) and ".".join(parts[2:]) in CHANNEL_PATHS
    else:
        ok = path in TRANSPORT_PATHS
    return None if ok else f"the report of {transport} has no {path!r}"


CLIENT_KNOBS: dict[str, tuple[set[str], Callable[[dict[str, float]], dict[str, Any]]]] = {
    "poll": ({"interval"}, lambda k: dict(k)),
    "longpoll": ({"retry_delay", "hold"}, _longpoll),
    "sse": (set(), lambda k: dict(k)),
    "ws": ({"ping_interval", "ping_timeout", "backoff_initial", "backoff_max"}, _backoff),
    "wt": ({"ping_interval", "ping_timeout", "backoff_initial", "backoff_max"}, _backoff),
    "rtc": ({"ping_interval", "ping_timeout", "backoff_initial", "backoff_max"}, _backoff),
}
"""Tunables a scenario may set per client, and how they become client options."""


class ScenarioError(ValueError):
    """A scenario file that cannot be run: says which file and which key."""


@dataclass(frozen=True)
class Expectation:
    transport: str
    path: str
    """Dotted path into the transport's report entry, e.g. ``latency_ms.p99``."""
    op: str
    expected: float | str

    def __str__(self) -> str:
        return f"{self.transport}.{self.path} {self.op} {self.expected}"

    def check(self, report: dict[str, Any]) -> str | None:
        """None when it holds, else a message naming what was expected and what was seen."""
        entry = report["transports"].get(self.transport)
        if entry is None:
            return f"{self}: transport {self.transport} did not run"
        actual = lookup(entry, self.path, report, self.transport)
        if isinstance(actual, str) and actual.startswith("<missing"):
            return f"{self}: {actual}"
        if actual is None and not isinstance(self.expected, str):
            return f"{self}: no value (nothing measured)"
        try:
            ok = OPS[self.op](actual, self.expected)
        except TypeError:
            ok = False
        return None if ok else f"{self}: got {actual}"


def lookup(entry: dict[str, Any], path: str, report: dict[str, Any], transport: str) -> Any:
    node: Any = entry
    parts = path.split(".")
    if parts[0] == "recovery":
        records = [f for f in report.get("faults", []) if f["transport"] == transport]
        if not records:
            return "<missing: no fault hit this transport>"
        node, parts = records[-1], parts[1:]
    for part in parts:
        if not isinstance(node, dict) or part not in node:
            return f"<missing: no {path!r} in the report>"
        node = node[part]
    return node


@dataclass
class Scenario:
    name: str
    description: str = ""
    duration: float = 10.0
    rate: float = 10.0
    transports: list[str] = field(default_factory=lambda: list(TRANSPORTS))
    faults: list[FaultSpec] = field(default_factory=list)
    expectations: list[Expectation] = field(default_factory=list)
    client_options: dict[str, dict[str, Any]] = field(default_factory=dict)
    server: dict[str, Any] = field(default_factory=dict)
    crowd: int = 0
    """Lightweight clients per transport (``--clients``)."""
    variants: list[Variant] = field(default_factory=list)
    comparisons: list[Comparison] = field(default_factory=list)
    targets: dict[str, dict[str, str]] = field(default_factory=dict)
    """Target mode: transport → ``url`` / ``seq`` / ``time`` / ``resume`` (rtplay.cli.target_scenario)."""

    def http_options(self) -> dict[str, float]:
        """The ``[server]`` knobs, as :attr:`ServerOptions.http <rtplay.protocol.options.ServerOptions.http>`."""
        return dict(self.server)

    def crowd_problem(self) -> str | None:
        """Why the crowd figures the expectations or comparisons name cannot exist (no crowd
        runs: ``crowd = N`` or ``--clients N`` is missing), or None. Checked before the run."""
        if self.crowd:
            return None
        paths = [f"expect.{e.transport}.{e.path}" for e in self.expectations if e.path.startswith("crowd.")]
        paths += [f"compare.{c.path}" for c in self.comparisons if c.path.split(".")[1:2] == ["crowd"]]
        if not paths:
            return None
        return f"{self.name}: {paths[0]}: names crowd figures, but no crowd runs (set crowd = N or --clients N)"

    def check(self, report: dict[str, Any]) -> list[str]:
        """Every failed expectation, as a message."""
        return [msg for e in self.expectations if (msg := e.check(report)) is not None]


def _number(where: str, value: Any, minimum: float = 0.0) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not minimum <= value < math.inf:
        raise ScenarioError(f"{where}: expected a number >= {minimum:g}, got {value!r:.40}")
    try:
        return float(value)
    except OverflowError:  # an integer of 310+ digits
        raise ScenarioError(f"{where}: expected a number >= {minimum:g}, got an integer out of range") from None


def _expectations(where: str, table: Any, transports: list[str]) -> list[Expectation]:
    if not isinstance(table, dict):
        raise ScenarioError(f"{where}: [expect] must be a table of transports")
    out: list[Expectation] = []
    for transport, checks in table.items():
        names = transports if transport == "all" else [transport]
        if transport != "all" and transport not in transports:
            raise ScenarioError(f"{where}: [expect.{transport}] names a transport the scenario does not run")
        if not isinstance(checks, dict):
            raise ScenarioError(f"{where}: [expect.{transport}] must be a table")
        for path, raw in checks.items():
            op, expected = _expectation(f"{where}: expect.{transport}.{path}", path, raw)
            for name in names:
                if (problem := path_error(name, path)) is not None:
                    raise ScenarioError(f"{where}: expect.{transport}.{path}: {problem}")
            out += [Expectation(name, path, op, expected) for name in names]
    return out


def _expectation(where: str, path: str, raw: Any) -> tuple[str, float | str]:
    """The operator and value of one expectation, checked against what the path holds."""
    if isinstance(raw, str) and (m := _EXPECT.match(raw)):
        if not math.isfinite(expected := float(m.group(2))):
            raise ScenarioError(f"{where}: {raw[:40]!r}: the number is out of range")
        return m.group(1), expected
    if isinstance(raw, bool) or not isinstance(raw, int | float | str):
        raise ScenarioError(f"{where}: expected a value or 'OP NUMBER', got {raw!r}")
    if isinstance(raw, str) and raw[:1] in "<>=!":
        raise ScenarioError(f"{where}: cannot read {raw!r}: use e.g. '>= 1'")
    if isinstance(raw, str) and path not in STRING_PATHS:
        raise ScenarioError(f"{where}: cannot read {raw!r}: a number or 'OP NUMBER' (e.g. '< 5') is expected")
    if isinstance(raw, float) and not math.isfinite(raw):
        raise ScenarioError(f"{where}: expected a finite number, got {raw!r}")
    return "==", raw


class TomlError(ValueError):
    """Text that is not TOML a scenario can be (says why)."""


def load_toml(text: str) -> dict[str, Any]:
    """``tomllib.loads`` raising :class:`TomlError` only: also for what tomllib lets escape,
    arrays or inline tables nested ~1,000 deep (its parser recurses: ``RecursionError``) and
    integers past Python's digit limit (a bare ``ValueError``)."""
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise TomlError(str(exc)) from None
    except RecursionError:
        raise TomlError("nested too deeply") from None
    except ValueError as exc:
        raise TomlError(str(exc)[:200]) from None


def parse_scenario(text: str, name: str) -> Scenario:
    """Parse a scenario; raise :class:`ScenarioError` naming the first problem."""
    try:
        data = load_toml(text)
    except TomlError as exc:
        raise ScenarioError(f"{name}: not valid TOML: {exc}") from None
    unknown = set(data) - TOP_KEYS
    if unknown:
        raise ScenarioError(f"{name}: unknown key(s) {', '.join(sorted(unknown))}; expected {', '.join(sorted(TOP_KEYS))}")
    transports = data.get("transports", "all")
    if transports == "all":
        transports = list(TRANSPORTS)
    if not isinstance(transports, list) or not transports or any(t not in TRANSPORTS for t in transports):
        raise ScenarioError(f"{name}: transports must be 'all' or a list of {', '.join(TRANSPORTS)}, got {transports!r}")
    targets: dict[str, dict[str, str]] = {}
    if "target" in data:
        try:
            targets = parse_target_table(data["target"])
        except IdentityError as exc:
            raise ScenarioError(f"{name}: {exc}") from None
        transports = list(targets)
    faults = data.get("faults", [])
    if not isinstance(faults, list):
        raise ScenarioError(f"{name}: faults must be a list of fault specs")
    try:
        specs = [parse_fault(str(f)) for f in faults]
    except FaultSpecError as exc:
        raise ScenarioError(f"{name}: {exc}") from None
    server = data.get("server", {})
    if not isinstance(server, dict):
        raise ScenarioError(f"{name}: [server] must be a table of {', '.join(SERVER_KNOBS)}")
    if strays := sorted(set(server) - set(SERVER_KNOBS)):
        raise ScenarioError(f"{name}: [server]: unknown key(s) {', '.join(strays)}; expected some of {', '.join(SERVER_KNOBS)}")
    server = {k: SERVER_KNOBS[k](_number(f"{name}: server.{k}", v)) for k, v in server.items()}
    return Scenario(
        name=name,
        description=str(data.get("description", "")),
        duration=_number(f"{name}: duration", data.get("duration", 10.0), 0.1),
        rate=_number(f"{name}: rate", data.get("rate", 10.0)),
        transports=transports,
        faults=specs,
        expectations=_expectations(name, data.get("expect", {}), transports),
        client_options=_client_options(name, data.get("clients", {})),
        server=server,
        crowd=int(_number(f"{name}: crowd", data.get("crowd", 0))),
        targets=targets,
        **_variants(name, data, transports),
    )


def _variants(name: str, data: dict[str, Any], transports: list[str]) -> dict[str, Any]:
    try:
        variants = parse_variants(name, data.get("variants", []), transports)
        comparisons = parse_comparisons(name, data.get("compare", {}), [v.name for v in variants])
    except VariantError as exc:
        raise ScenarioError(str(exc)) from None
    for comparison in comparisons:  # every dotted path is checked before the run
        transport, _, path = comparison.path.partition(".")
        if transport not in transports:
            raise ScenarioError(f"{name}: compare.{comparison.path}: the scenario does not run {transport!r}")
        if (problem := path_error(transport, path)) is not None:
            raise ScenarioError(f"{name}: compare.{comparison.path}: {problem}")
    return {"variants": variants, "comparisons": comparisons}


def _client_options(name: str, table: Any) -> dict[str, dict[str, Any]]:
    if not isinstance(table, dict):
        raise ScenarioError(f"{name}: [clients] must be a table of transports")
    out: dict[str, dict[str, Any]] = {}
    for transport, knobs in table.items():
        if transport not in CLIENT_KNOBS or not isinstance(knobs, dict):
            raise ScenarioError(f"{name}: [clients.{transport}]: no knobs for that transport")
        allowed, build = CLIENT_KNOBS[transport]
        policy = knobs.get("retry")
        knobs = {k: v for k, v in knobs.items() if k != "retry"}
        if transport != "poll":
            allowed = allowed | {"retry"}
        unknown = sorted(set(knobs) - allowed) + (["retry"] if policy is not None and "retry" not in allowed else [])
        if unknown:
            hint = " (a top-level key: move it above every [table])" if set(unknown) & TOP_KEYS else ""
            raise ScenarioError(
                f"{name}: [clients.{transport}]: unknown key(s) {', '.join(unknown)}{hint}; "
                f"expected some of {', '.join(sorted(allowed)) or 'none (poll polls on its interval)'}"
            )
        out[transport] = build({k: _number(f"{name}: clients.{transport}.{k}", v) for k, v in knobs.items()})
        if policy is not None:
            try:
                out[transport]["retry"] = parse_policy(str(policy))
            except RetrySpecError as exc:
                raise ScenarioError(f"{name}: clients.{transport}.retry: {exc}") from None
    return out


BUILTIN = "rtplay.scenarios"


def builtin_names() -> list[str]:
    """The scenarios shipped inside the package, runnable by name."""
    return sorted(p.name.removesuffix(".toml") for p in resources.files(BUILTIN).iterdir() if p.name.endswith(".toml"))


def load_scenario(ref: str) -> Scenario:
    """A scenario by path, or by the name of a shipped one."""
    path = Path(ref)
    if path.suffix == ".toml" or path.exists():
        try:
            return parse_scenario(path.read_text(), path.name)
        except OSError as exc:
            raise ScenarioError(f"cannot read scenario {ref}: {exc.strerror}") from None
    if ref in builtin_names():
        return parse_scenario(resources.files(BUILTIN).joinpath(f"{ref}.toml").read_text(), ref)
    raise ScenarioError(f"no scenario {ref!r}: not a file, and not one of {', '.join(builtin_names())}")
