"""Crowd accounting: what N clients of one transport did together. Pure: times are passed in.

A :class:`CrowdRecorder` sits in each crowd worker process and is fed the typed events of
its clients; :meth:`CrowdRecorder.drain` hands over what happened since the last call as a
JSON-able delta. A :class:`CrowdStats` in the session merges the deltas of every worker and
computes the figures of the report's ``crowd`` entry and of the playground's crowd pane.
Monotonic times are comparable across processes (Linux ``CLOCK_MONOTONIC`` is system-wide).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable
from typing import Any

from rtplay.model.events import (
    Connected,
    Connecting,
    Disconnected,
    Event,
    Failed,
    RetryScheduled,
    State,
    state_of,
)
from rtplay.protocol.load import BIN_S, bin_of

#: Largest crowd per transport: bounded so a typo (``--clients 1000000``) cannot exhaust the
#: machine's file descriptors and memory; 10,000 is ten times the issue's thundering herd.
MAX_CLIENTS = 10_000

#: Reconnect delays kept for the percentiles. 1,000 clients through ten outages is 10,000;
#: beyond this many the rest are not sampled (the count still is).
MAX_DELAY_SAMPLES = 100_000

#: Attempt lags kept (one per retry attempt, see :class:`CrowdRecorder`): 10,000 clients
#: retrying ten times each through an outage make 100,000; past the cap the rest go unsampled.
MAX_LAG_SAMPLES = 100_000

#: Connected-count transitions kept (one per connect and per disconnect). A crowd of 1,000
#: dropped every second for a minute makes 120,000; past the cap the wave figures stop.
MAX_TRANSITIONS = 200_000

#: State-distribution samples kept for the pane's history (one per worker snapshot merge).
MAX_STATE_SAMPLES = 10_000

STATES = (State.CONNECTING, State.OPEN, State.RETRYING, State.FAILED)


def percentile(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile (None when empty)."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q / 100 * len(ordered)) - 1))]


def rounded(value: float | None) -> float | None:
    """``value`` to a tenth (None stays None)."""
    return None if value is None else round(value, 1)


class CrowdRecorder:
    """The events of many clients of one transport, counted, not kept.

    Each retry attempt's *lag* is how late it started against its policy's due time (the
    ``RetryScheduled`` event's time plus its delay): the policy decides when a client tries
    again, the generator's event loop decides when it actually does. A loop stalled for 0.9 s
    starts every attempt due in those 0.9 s at once, after it; the lag says so, apart from
    the policy's own schedule.
    """

    def __init__(self, count: int) -> None:
        self.count = count
        self.states = [State.CONNECTING] * count
        self._down_since: list[float | None] = [None] * count
        self._ever_connected = [False] * count
        self.connected_once = 0
        """Clients that have connected at least once (the crowd's set-up is done at ``count``)."""
        self.open = 0
        """Clients connected now."""
        self._attempts: Counter[int] = Counter()
        self._setup_attempts: Counter[int] = Counter()
        self._connects: Counter[int] = Counter()
        self._delays: list[float] = []
        self._transitions: list[tuple[float, int]] = []
        self._due: list[float | None] = [None] * count
        self._lags: list[tuple[float, float]] = []
        self._lags_kept = 0
        self.total_attempts = 0

    def emit_for(self, index: int) -> Callable[[Event], None]:
        """The ``emit`` callback of client ``index``."""
        return lambda event: self.on_event(index, event)

    def on_event(self, index: int, event: Event) -> None:
        """Account one client's event."""
        state = state_of(event)
        if state is not None:
            self.open += (state is State.OPEN) - (self.states[index] is State.OPEN)
            self.states[index] = state
        now = event.at
        if isinstance(event, Connecting):
            self.total_attempts += 1
            # A client not yet in is still the crowd's set-up, however late (the run may start
            # without it): its tries are no reconnect attempts of the run's herd.
            (self._attempts if self._ever_connected[index] else self._setup_attempts)[bin_of(now)] += 1
            self._lag(index, now)
        elif isinstance(event, RetryScheduled):
            self._due[index] = now + event.delay_s
        elif isinstance(event, Connected):
            self._connects[bin_of(now)] += 1
            down = self._down_since[index]
            if down is not None and len(self._delays) < MAX_DELAY_SAMPLES:
                self._delays.append(now - down)
            self._down_since[index] = None
            self.connected_once += not self._ever_connected[index]
            self._ever_connected[index] = True
            self._transition(now, +1)
        elif isinstance(event, Disconnected | Failed) and self._ever_connected[index]:
            if self._down_since[index] is None:
                self._down_since[index] = now
                self._transition(now, -1)

    def _lag(self, index: int, now: float) -> None:
        """Client ``index`` attempts at ``now``: how late against its retry's due time (a first
        attempt has none)."""
        due, self._due[index] = self._due[index], None
        if due is not None and self._lags_kept < MAX_LAG_SAMPLES:
            self._lags_kept += 1
            self._lags.append((now, max(0.0, now - due)))

    def _transition(self, now: float, delta: int) -> None:
        if len(self._transitions) < MAX_TRANSITIONS:
            self._transitions.append((now, delta))

    def state_counts(self) -> dict[str, int]:
        counts = Counter(s.value for s in self.states)
        return {s.value: counts.get(s.value, 0) for s in STATES}

    def drain(self) -> dict[str, Any]:
        """What happened since the last drain, as JSON-able data for :meth:`CrowdStats.merge`."""
        delta = {
            "attempts": sorted(self._attempts.items()),
            "setup_attempts": sorted(self._setup_attempts.items()),
            "connects": sorted(self._connects.items()),
            "delays": self._delays,
            "transitions": self._transitions,
            "lags": self._lags,
            "states": self.state_counts(),
        }
        self._attempts, self._setup_attempts, self._connects = Counter(), Counter(), Counter()
        self._delays, self._transitions, self._lags = [], [], []
        return delta


class CrowdStats:
    """The merged figures of every worker of one transport's crowd."""

    def __init__(self, clients: int) -> None:
        self.clients = clients
        self.attempts: Counter[int] = Counter()
        """Attempts of clients that had connected before (reconnects), per bin."""
        self.setup_attempts: Counter[int] = Counter()
        """Attempts of clients never connected yet (the crowd's set-up), per bin."""
        self.connects: Counter[int] = Counter()
        self.delays: list[float] = []
        self.transitions: list[tuple[float, int]] = []
        self.lags: list[tuple[float, float]] = []
        """(attempt time, seconds late against its policy's due time) of retry attempts."""
        self.worker_states: dict[int, dict[str, int]] = {}
        self.history: list[tuple[float, dict[str, int]]] = []
        """(time, clients per state) after each merge: the pane's distribution over time."""

    def merge(self, worker: int, delta: dict[str, Any], now: float) -> None:
        """Add one worker's delta (see :meth:`CrowdRecorder.drain`)."""
        self.attempts.update(dict((int(b), int(n)) for b, n in delta["attempts"]))
        self.setup_attempts.update(dict((int(b), int(n)) for b, n in delta.get("setup_attempts", [])))
        self.connects.update(dict((int(b), int(n)) for b, n in delta["connects"]))
        room = MAX_DELAY_SAMPLES - len(self.delays)
        self.delays.extend(float(d) for d in delta["delays"][:room])
        room = MAX_TRANSITIONS - len(self.transitions)
        self.transitions.extend((float(t), int(d)) for t, d in delta["transitions"][:room])
        room = MAX_LAG_SAMPLES - len(self.lags)
        self.lags.extend((float(t), float(lag)) for t, lag in delta.get("lags", [])[:room])
        self.worker_states[worker] = {k: int(v) for k, v in delta["states"].items()}
        if len(self.history) < MAX_STATE_SAMPLES:
            self.history.append((now, self.states()))

    def drop_worker(self, worker: int) -> None:
        """Forget a lost worker's live states: its clients are counted apart, not as connected."""
        self.worker_states.pop(worker, None)

    def states(self) -> dict[str, int]:
        """Clients per state now (summed over workers)."""
        total: Counter[str] = Counter()
        for counts in self.worker_states.values():
            total.update(counts)
        return {s.value: total.get(s.value, 0) for s in STATES}

    def rate_series(self, which: str, start: float, end: float) -> list[float]:
        """Per-bin rates (per second) of ``attempts`` or ``connects`` from ``start`` to ``end``
        (every bin, empty ones as 0: what the pane charts)."""
        first, last = bin_of(start), bin_of(end)
        if which != "attempts":
            return [self.connects.get(b, 0) / BIN_S for b in range(first, last + 1)]
        both = (self.attempts, self.setup_attempts)  # the pane shows every try, set-up's too
        return [sum(c.get(b, 0) for c in both) / BIN_S for b in range(first, last + 1)]

    @staticmethod
    def series(bins: Counter[int], first: int) -> list[list[float]]:
        """Non-empty bins from ``first`` on as ``[[seconds since first, per second], …]``."""
        return [[round((b - first) * BIN_S, 1), n / BIN_S] for b, n in sorted(bins.items()) if b >= first]

    def waves(self) -> list[tuple[float, float | None]]:
        """Each spell in which not every client was connected, after all first were:
        (start, end), end None when it had not ended."""
        connected, full = 0, False
        spells: list[tuple[float, float | None]] = []
        start: float | None = None
        for t, delta in sorted(self.transitions):
            connected += delta
            if connected >= self.clients:
                full = True
                if start is not None:
                    spells.append((start, t))
                    start = None
            elif full and start is None:
                start = t
        if start is not None:
            spells.append((start, None))
        return spells

    def time_to_all_reconnected(self) -> float | None:
        """The longest spell from the first disconnect to every client connected again;
        None when a spell never ended (or no client ever dropped)."""
        waves = self.waves()
        if not waves or any(end is None for _, end in waves):
            return None
        return max(end - start for start, end in waves if end is not None)

    def report(self, final: dict[str, Any] | None = None, since: float | None = None) -> dict[str, Any]:
        """The report's ``crowd`` entry; ``final`` adds delivery figures from the workers.

        Rates and attempts count from ``since`` (the run's start, once the crowd had
        connected): the crowd's own first connects are the set-up, not the run, and so are the
        tries of a client still not in after ``since`` (counted apart: ``setup_attempts``).
        """
        first = -(2**62) if since is None else bin_of(since)
        attempts = [n for b, n in self.attempts.items() if b >= first]
        peak_attempts = max(attempts, default=0) / BIN_S
        peak_connects = max((n for b, n in self.connects.items() if b >= first), default=0) / BIN_S
        reconnect = self.time_to_all_reconnected()
        delays = [d * 1000 for d in self.delays]
        p50, p99 = percentile(delays, 50), percentile(delays, 99)
        lags = [lag * 1000 for t, lag in self.lags if since is None or t >= since]
        entry: dict[str, Any] = {
            "clients": self.clients,
            "peak_attempts_per_s": round(peak_attempts, 1),
            "peak_connects_per_s": round(peak_connects, 1),
            "time_to_all_reconnected_s": None if reconnect is None else round(reconnect, 3),
            "total_attempts": sum(attempts),
            "setup_attempts": sum(n for b, n in self.setup_attempts.items() if b >= first),
            "reconnect_delay_ms": {
                "p50": None if p50 is None else round(p50, 1),
                "p99": None if p99 is None else round(p99, 1),
            },
            "attempt_lag_ms": {
                "p50": rounded(percentile(lags, 50)), "p99": rounded(percentile(lags, 99)),
                "max": rounded(max(lags, default=None)),
            },
            "states": self.states(),
            "attempts_per_s": self.series(self.attempts, first),
            "connects_per_s": self.series(self.connects, first),
        }
        if final is not None:
            entry |= final
        return entry


def merge_finals(finals: list[dict[str, Any]]) -> dict[str, Any]:
    """One transport's final delivery figures from every worker's."""
    return {
        "delivered_min": min((f["delivered_min"] for f in finals), default=0),
        "lost_total": sum(f["lost_total"] for f in finals),
        "pending_total": sum(f["pending_total"] for f in finals),
        "lost_to_reset_total": sum(f["lost_to_reset_total"] for f in finals),
        "policy": finals[0]["policy"] if finals else "",
        "worker_cpu_s": round(sum(f.get("cpu_s", 0.0) for f in finals), 2),
        "worker_rss_kb_per_client": round(
            sum(f.get("max_rss_kb", 0) for f in finals) / max(1, sum(f.get("clients", 0) for f in finals)), 1
        ),
    }


def final_figures(entries: list[dict[str, Any]], policy: str) -> dict[str, Any]:
    """A worker's delivery figures from its clients' report entries."""
    return {
        "delivered_min": min((int(e["delivered"]) for e in entries), default=0),
        "lost_total": sum(int(e["lost"]) for e in entries),
        # Still recoverable at the end (retrying with a cursor the server can replay from):
        # pending by the accounting model, not lost.
        "pending_total": sum(int(e["pending"]) for e in entries),
        "lost_to_reset_total": sum(int(e["lost_to_reset"]) for e in entries),
        "policy": policy,
    }


def render_crowds(report: dict[str, Any]) -> list[str]:
    """The crowd figures under the headless table (nothing when no crowd ran)."""
    rows = [(name, entry["crowd"]) for name, entry in report["transports"].items() if "crowd" in entry]
    if not rows:
        return []

    def v(x: object) -> str:
        return "-" if x is None else f"{x:g}" if isinstance(x, float) else str(x)

    lines = [
        "",
        "crowd: attempts/s and connects/s peak over 100 ms bins; all back = longest spell not all connected; "
        "attempt lag = how late a retry started against its policy's due time",
    ]
    for name, c in rows:
        lines.append(
            f"  {name:<9} {c['clients']} clients  {c.get('policy', '')}  peak attempts/s {v(c['peak_attempts_per_s'])}  "
            f"peak connects/s {v(c['peak_connects_per_s'])}  all back {v(c['time_to_all_reconnected_s'])} s  "
            f"attempts {c['total_attempts']}"
            + (f" (+{c['setup_attempts']} set-up)" if c.get("setup_attempts") else "")
            + f"  delay p50/p99 {v(c['reconnect_delay_ms']['p50'])}/"
            f"{v(c['reconnect_delay_ms']['p99'])} ms  attempt lag p99 {v(c.get('attempt_lag_ms', {}).get('p99'))} ms  "
            f"delivered min {v(c.get('delivered_min'))}  "
            f"lost {v(c.get('lost_total'))}  pending {v(c.get('pending_total'))}"
            + (f"  lost_clients {c['lost_clients']} (on workers lost mid-run)" if c.get("lost_clients") else "")
        )
    load = report.get("server_load")
    if load:
        lines.append(
            f"  server: peak accepts/s {v(load['peak_accepts_per_s'])}  peak concurrent {load['peak_concurrent']}  "
            f"max loop lag {v(load['max_loop_lag_ms'])} ms"
        )
    return lines
