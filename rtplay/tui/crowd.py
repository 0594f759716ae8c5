"""The crowd view: what N clients of each transport do to the server, live.

Per crowd: connections accepted per second at the server, concurrent connections, the
clients' connect attempts per second, and how many clients are in each state over time,
so the reconnection wave after an outage is visible. ``b`` restarts the crowd under the
next retry policy and ``o`` takes the server down for 5 s: the same outage with another
policy is one key (and one outage) away. Text is built by pure functions from numbers.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any, ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.screen import ModalScreen
from textual.widgets import Static

from rtplay.engine.control_client import ControlError
from rtplay.model.crowd import CrowdStats
from rtplay.model.retry_spec import next_in_cycle, parse_policy
from rtplay.protocol.faults import ALL, Kind
from rtplay.protocol.load import BIN_S

if TYPE_CHECKING:
    from rtplay.engine.session import Session

log = logging.getLogger(__name__)

BLOCKS = " ▁▂▃▄▅▆▇█"

#: Seconds of history the view charts: one outage and its whole reconnection wave.
WINDOW_S = 30.0

#: The outage the view's ``o`` key starts: the thundering-herd scenario's.
OUTAGE_S = 5.0

#: Refresh rate: 5 Hz, the crowd workers' snapshot rate (faster would redraw the same data).
REFRESH_HZ = 5


def spark(values: list[float], width: int) -> str:
    """``values`` as one line of block characters, the last ``width`` of them, scaled to their max."""
    values = values[-width:]
    top = max(values, default=0.0)
    if top <= 0:
        return " " * len(values)
    return "".join(BLOCKS[min(len(BLOCKS) - 1, round(v / top * (len(BLOCKS) - 1)))] for v in values)


def resample(points: list[list[float]], start: float, end: float) -> list[float]:
    """``[[t, v], …]`` (100 ms bins) as one value per bin from ``start`` to ``end`` (0 = none)."""
    bins = {round(t / BIN_S): v for t, v in points}
    first, last = round(start / BIN_S), round(end / BIN_S)
    return [bins.get(b, 0.0) for b in range(first, last + 1)]


def state_rows(stats: CrowdStats, start: float, width: int) -> list[str]:
    """One sparkline per state: how many clients were in it over the window."""
    history = [(t, counts) for t, counts in stats.history if t >= start]
    rows = []
    for state in ("open", "connecting", "retrying", "failed"):
        values = [float(counts.get(state, 0)) for _, counts in history]
        now = int(values[-1]) if values else 0
        rows.append(f"  {state:<10} {now:>6}  {spark(values, width)}")
    return rows


def server_text(load: dict[str, Any], now: float, width: int = 60) -> str:
    """The server's side, once for every crowd: its figures are server-wide, not per transport."""
    start = now - WINDOW_S
    accepts = resample(load.get("accepts_per_s", []), start, now)
    concurrent = resample(load.get("concurrent", []), start, now)
    lag = resample(load.get("loop_lag_ms", []), start, now)
    return "\n".join([
        "[b]server[/b]  every transport together",
        f"  accepts/s  {max(accepts[-10:], default=0):>6.0f}  {spark(accepts, width)}",
        f"  concurrent {load.get('concurrent_now', 0):>6}  {spark(concurrent, width)}",
        f"  loop lag ms{max(lag[-10:], default=0):>6.0f}  {spark(lag, width)}",
    ])


def crowd_text(name: str, crowd: Any, now: float, width: int = 60, default_policy: str = "") -> str:
    """The block of one transport's crowd: its policy (named, also when it is the transport's
    default), its connect attempts and its clients per state."""
    start = now - WINDOW_S
    stats: CrowdStats = crowd.stats
    attempts = stats.rate_series("attempts", start, now)
    policy = crowd.policy or (f"{default_policy} (the default)" if default_policy else "none: polls on its interval")
    lines = [
        f"[b]{name}[/b]  {crowd.clients} clients  policy [b]{policy}[/b]",
        f"  attempts/s {max(attempts[-10:], default=0):>6.0f}  {spark(attempts, width)}",
        *state_rows(stats, start, width),
        workers_row([s.report() for s in crowd.slices]),
    ]
    return "\n".join(lines)


def workers_row(workers: list[dict[str, Any]]) -> str:
    """The crowd's Dask workers: how many run where, and any lost mid-run (its clients apart)."""
    hosts = sorted({w["host"] for w in workers})
    lost = [w for w in workers if w["state"] == "lost"]
    row = f"  workers    {len(workers) - len(lost):>6}  on {', '.join(hosts) or '-'}"
    if lost:
        gone = sum(w["clients"] for w in lost)
        row += f"  [b red]{len(lost)} lost mid-run: {gone} clients counted apart[/]"
    return row


class CrowdScreen(ModalScreen[None]):
    """Every crowd of the session, refreshed at :data:`REFRESH_HZ`."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,w,q", "dismiss", "close", key_display="esc"),
        Binding("b", "next_policy", "next policy"),
        Binding("o", "outage", f"outage {OUTAGE_S:g}s"),
    ]

    def __init__(self, session: Session) -> None:
        super().__init__()
        self.session = session
        self._body = Static(id="crowd-body", markup=True)
        self.load: dict[str, Any] = {}
        """The server's last load series (accepts/s, concurrent, loop lag)."""

    def compose(self) -> ComposeResult:
        yield self._body

    def on_mount(self) -> None:
        self.set_interval(1 / REFRESH_HZ, self.refresh_text)
        self.set_interval(1 / REFRESH_HZ, self.poll_load)
        self.poll_load()
        self.refresh_text()

    def poll_load(self) -> None:
        """Fetch the server's load series (a worker: the control API is another process)."""
        self.run_worker(self._fetch_load(), group="crowd-load", exclusive=True)

    async def _fetch_load(self) -> None:
        control = self.session.control
        if control is None:
            return
        try:
            self.load = (await control.status(load_s=WINDOW_S)).get("load", {})
        except (ControlError, ValueError) as exc:
            log.warning("crowd view: no load from the server: %s", exc)

    def refresh_text(self) -> None:
        now = time.monotonic()
        width = max(20, self.size.width - 24)
        blocks = [
            crowd_text(n, c, now, width, getattr(self.session.clients.get(n), "default_policy", ""))
            for n, c in self.session.crowds.items()
        ]
        if not blocks:  # the cluster's workers are still starting
            blocks = [f"{self.session.config.crowd} clients per transport: starting on the cluster…"]
        blocks = [server_text(self.load, now, width), *blocks]
        keys = f"b next policy · o outage {OUTAGE_S:g} s · esc close · {WINDOW_S:g} s shown"
        self._body.update("\n\n".join([*blocks, keys]))

    def action_next_policy(self) -> None:
        """Restart every crowd under the next policy of the cycle."""
        for name, crowd in self.session.crowds.items():
            client = self.session.clients.get(name)
            default = getattr(client, "default_policy", "")  # a crowd without a policy runs its default
            spec = next_in_cycle(str(parse_policy(crowd.policy or default)) if crowd.policy or default else "")
            self.notify(f"{name} crowd: restarting with {spec}", timeout=2, markup=False)
            self.run_worker(self.session.restart_crowd(name, str(spec)), exclusive=False)

    async def action_outage(self) -> None:
        try:
            await self.session.faults.add(Kind.OUTAGE, ALL, OUTAGE_S)
        except (ValueError, ControlError) as exc:
            self.notify(str(exc), severity="error", markup=False)
