"""A real browser beside rtplay's own clients: headless Chromium on the server's page.

``rtplay --browser`` and ``rtplay run --browser`` start Debian's Chromium through Playwright
(its Python package, driving the system browser by ``executable_path``: no browser download)
on the page at ``/``. The page runs one client per transport with the browser's own APIs and
posts its figures to ``/browser/report``; :class:`BrowserMonitor` reads them back over HTTP
every :data:`SAMPLE_INTERVAL_S`, so the browser's decisions (reconnect, resume, give up) can
be shown and reported beside rtplay's, with the same fields (:func:`report_entries`).

Chromium runs with a fresh profile and no background traffic. WebTransport to 127.0.0.1
needs QUIC allowed to that origin (``--origin-to-force-quic-on``; the certificate itself is
pinned by hash in the page). WebRTC needs a network interface to gather on: a desktop
browser uses its LAN address (offered as an mDNS name) and the server learns it from the
browser's checks. On a loopback-only host (a CI namespace) Chromium has none it may use, so
there — and only there — the driver lets it use loopback (``--allow-loopback-in-peer-
connection``) and grants the page a capture permission, without which Chromium does not
enumerate interfaces for WebRTC; no media is captured or faked.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import socket
import tempfile
import time
from dataclasses import dataclass, field
from typing import Any

import httpx

log = logging.getLogger(__name__)

#: Where Debian installs Chromium; ``RTPLAY_CHROMIUM`` overrides it.
DEFAULT_CHROMIUM = "/usr/bin/chromium"

#: A quiet headless Chromium: no first-run UI, no background requests, no updates or sync.
BASE_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)

#: Launch and first page load; Chromium takes ~1-3 s on a busy 2-core machine.
LAUNCH_TIMEOUT_S = 30.0

#: After launch, how long the page's clients get to open before a run goes on without them.
READY_TIMEOUT_S = 10.0

#: Grace for Chromium to close its page and profile before its driver is stopped.
CLOSE_TIMEOUT_S = 10.0

#: How often the browser's report is read back (the page posts every 250 ms).
SAMPLE_INTERVAL_S = 0.25

#: How finely the browser's figures are timed: the page posts and rtplay reads every 250 ms.
RESOLUTION_S = 0.5

#: A client that leaves ``open`` this long after a fault ended is not counted as noticing it.
DETECT_WINDOW_S = 10.0

#: Samples kept per run for recovery figures: ~25 minutes at 4 per second.
MAX_SAMPLES = 6000


class BrowserUnavailable(RuntimeError):
    """Playwright or Chromium is missing; the message says what to install."""


def chromium_path() -> str:
    """The Chromium executable to drive."""
    chosen = os.environ.get("RTPLAY_CHROMIUM")
    if chosen:  # the user's own choice is used or refused, never silently replaced
        if not (os.path.isfile(chosen) and os.access(chosen, os.X_OK)):
            raise BrowserUnavailable(f"RTPLAY_CHROMIUM={chosen}: no executable file there")
        return chosen
    path = DEFAULT_CHROMIUM
    if not os.path.exists(path):
        found = shutil.which("chromium") or shutil.which("chromium-browser")
        if found is None:
            raise BrowserUnavailable(f"no Chromium at {path} (apt-get install chromium, or set RTPLAY_CHROMIUM)")
        path = found
    return path


def loopback_only(names: list[str] | None = None) -> bool:
    """Whether this host (network namespace) has no interface but loopback."""
    if names is None:
        names = [name for _, name in socket.if_nameindex()]
    return all(name == "lo" for name in names)


def chromium_flags(quic_port: int, *, loopback: bool) -> list[str]:
    """The command line (the fresh ``--user-data-dir`` aside): :data:`BASE_FLAGS`, QUIC to
    our port, and on a loopback-only host the one switch that lets WebRTC use loopback."""
    flags = [*BASE_FLAGS, f"--origin-to-force-quic-on=127.0.0.1:{quic_port}"]
    if loopback:
        flags.append("--allow-loopback-in-peer-connection")
    return flags


class BrowserDriver:
    """One headless Chromium showing the page; :meth:`start` then :meth:`stop` (always)."""

    def __init__(self, http_url: str, quic_port: int) -> None:
        self.http_url = http_url
        self.quic_port = quic_port
        self.page: Any = None
        """The Playwright page (for tests: ``await driver.page.evaluate(...)``)."""
        self._playwright: Any = None
        self._context: Any = None
        self._profile: tempfile.TemporaryDirectory[str] | None = None

    async def start(self) -> None:
        """Launch Chromium on the page; clean up whatever started if anything fails."""
        try:
            from playwright.async_api import async_playwright
        except ImportError:
            raise BrowserUnavailable("Playwright is not installed: pip install -e '.[browser]'") from None
        executable = chromium_path()
        self._profile = tempfile.TemporaryDirectory(prefix="rtplay-chromium-")
        loopback = loopback_only()
        try:
            async with asyncio.timeout(LAUNCH_TIMEOUT_S):
                self._playwright = await async_playwright().start()
                # Playwright passes the profile and --headless itself; the rest are ours.
                self._context = await self._playwright.chromium.launch_persistent_context(
                    self._profile.name,
                    executable_path=executable,
                    headless=True,
                    args=chromium_flags(self.quic_port, loopback=loopback)[1:],
                )
                if loopback:
                    await self._context.grant_permissions(["camera", "microphone"], origin=self.http_url)
                self.page = await self._context.new_page()
                self.page.on("pageerror", lambda exc: log.warning("browser page error: %s", exc))
                await self.page.goto(self.http_url + "/")
        except TimeoutError:
            await self.stop()
            raise BrowserUnavailable(f"Chromium did not show the page within {LAUNCH_TIMEOUT_S:g} s") from None
        except BaseException:
            await self.stop()
            raise
        log.info("headless Chromium on %s/ (loopback-only host: %s)", self.http_url, loopback)

    async def restart_failed(self, transports: list[str]) -> list[str]:
        """Press the page's retry button of each of ``transports`` whose client failed for
        good (as ``g`` restarts rtplay's own); the names restarted."""
        if self.page is None:
            return []
        return list(await self.page.evaluate("names => window.rtplay.restartFailed(names)", transports))

    async def stop(self) -> None:
        """Close the browser and remove its profile (safe to call twice)."""
        context, self._context = self._context, None
        playwright, self._playwright = self._playwright, None
        try:
            if context is not None:
                async with asyncio.timeout(CLOSE_TIMEOUT_S):  # stopping Playwright kills it anyway
                    await context.close()
        except TimeoutError:
            log.warning("Chromium did not close within %g s; stopping its driver", CLOSE_TIMEOUT_S)
        finally:
            if playwright is not None:
                await playwright.stop()
            if self._profile is not None:
                self._profile.cleanup()
                self._profile = None


async def fetch_reports(http: httpx.AsyncClient, http_url: str) -> list[dict[str, Any]]:
    """Every page's latest report, as the server keeps them (newest last)."""
    response = await http.get(f"{http_url}/browser/report")
    response.raise_for_status()
    pages = response.json().get("pages", [])
    return pages if isinstance(pages, list) else []


def _channel_entry(stats: dict[str, Any], published: int, failed: bool) -> dict[str, Any]:
    missing, highest = stats["missing"], stats["highest"]
    # As rtplay's (rtplay.model.accounting): holes below the highest seen are lost; what was published
    # beyond it is pending while the page's client lives (it resumes), not its loss once it gave
    # up (it stopped subscribing when it failed).
    return {
        "delivered": stats["delivered"],
        "pending": 0 if failed else max(0, published - highest),
        "lost": missing,
        "lost_to_reset": stats["lost_to_reset"],
        "duplicates": stats["duplicates"],
        "out_of_order": stats["out_of_order"],
        "latency_ms": stats["latency_ms"],
        "recent_latency_ms": {"p50": None, "p99": None, "window_s": None},  # the page keeps none
        "wire_bytes_per_msg": None,  # a page cannot see its own wire bytes
    }


def report_entries(clients: dict[str, Any], published: int) -> dict[str, Any]:
    """One page's clients as entries of the JSON report, with rtplay's transports' fields."""
    out: dict[str, Any] = {}
    for name, client in clients.items():
        failed = client["state"] == "failed"
        channels = {c: _channel_entry(s, published, failed) for c, s in client["channels"].items()}
        base: dict[str, Any] = {
            "state": client["state"],
            "connects": client["connects"],
            "reconnects": client["reconnects"],
            "downtime_s": client["downtime_s"],
        }
        if failed:
            base["failed_reason"] = client.get("failed_reason", "")
        primary = next(iter(channels.values()))
        entry = primary | base
        if len(channels) > 1:
            entry["channels"] = channels
        out[name] = entry
    return out


@dataclass
class Sample:
    """One read of the browser's report: per transport, state and primary delivered count."""

    at: float
    clients: dict[str, tuple[str, int]] = field(default_factory=dict)


def primary_counts(clients: dict[str, Any]) -> dict[str, tuple[str, int]]:
    """(state, delivered on the first channel) per transport."""
    out: dict[str, tuple[str, int]] = {}
    for name, client in clients.items():
        first = next(iter(client["channels"].values()))
        out[name] = (client["state"], first["delivered"])
    return out


def _from_events(
    events: list[list[Any]], start: float, end: float, wall_offset: float
) -> tuple[float | None, float | None]:
    """(detected at, back at) in session-clock seconds from the page's own timed events: the
    first ``down`` within :data:`DETECT_WINDOW_S` of the fault, the first ``back`` after it."""
    timed = [(kind, ms / 1000 - wall_offset) for kind, ms in events if isinstance(ms, int | float)]
    down = next((t for kind, t in timed if kind == "down" and start <= t <= end + DETECT_WINDOW_S), None)
    if down is None:
        return None, None
    back = next((t for kind, t in timed if kind == "back" and t >= down), None)
    return down, back


def recovery(
    samples: list[Sample],
    transport: str,
    start: float,
    end: float,
    events: list[list[Any]] | None = None,
    wall_offset: float = 0.0,
) -> dict[str, Any]:
    """What the browser's client of ``transport`` did about a fault active over [start, end]
    (session-clock seconds): when it noticed (left ``open``), when it got a new message after
    the fault ended (or after it noticed, if later), and how it ended up — as rtplay measures
    its own clients. A client that went down is timed by the page's own events (``wall_offset``
    = wall clock − session clock), which a fault taking the server down cannot hide; one that
    never did is timed by the samples, to :data:`RESOLUTION_S`."""
    detected_at, back_at = _from_events(events or [], start, end, wall_offset)
    final = "unknown"
    count_at_end = None
    recovered_at = None
    for sample in samples:
        if transport not in sample.clients:
            continue
        state, count = sample.clients[transport]
        final = state
        if sample.at <= end:
            count_at_end = count
        elif recovered_at is None and count_at_end is not None and count > count_at_end and state == "open":
            recovered_at = sample.at
    ref = max(end, detected_at or end)
    if detected_at is not None:
        recovered_at = back_at
    since = lambda t, r: None if t is None else round(max(0.0, t - r), 3)  # noqa: E731
    return {
        "time_to_detect_s": since(detected_at, start),
        "time_to_recover_s": since(recovered_at, ref),
        "final_state": final,
    }


class BrowserMonitor:
    """Reads the browser's report every :data:`SAMPLE_INTERVAL_S` while a run goes on."""

    def __init__(self, http_url: str, clock: Any) -> None:
        self.http_url = http_url
        self.clock = clock
        self.samples: list[Sample] = []
        self.latest: dict[str, Any] = {}
        """The newest page's clients, as it reported them."""
        self.wall_offset = time.time() - clock()
        """Wall clock minus the session clock (the page times its events by the wall clock)."""
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="rtplay-browser-monitor")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def read_once(self, http: httpx.AsyncClient) -> None:
        pages = await fetch_reports(http, self.http_url)
        self.wall_offset = time.time() - self.clock()
        if pages:
            self.latest = pages[-1]["clients"]
            if len(self.samples) < MAX_SAMPLES:
                self.samples.append(Sample(self.clock(), primary_counts(self.latest)))

    async def _run(self) -> None:
        async with httpx.AsyncClient(trust_env=False, timeout=2.0) as http:
            while True:
                try:
                    await self.read_once(http)
                except (httpx.HTTPError, ValueError, KeyError) as exc:  # an outage fault, say
                    log.debug("browser report not read: %s", exc)
                await asyncio.sleep(SAMPLE_INTERVAL_S)

    def caught_up(self, published: int) -> bool:
        """Whether every browser client still running has its first channel at ``published``."""
        if not self.latest:
            return False
        for client in self.latest.values():
            if client["state"] == "failed":
                continue
            first = next(iter(client["channels"].values()))
            if first["highest"] < published:
                return False
        return True


class BrowserSide:
    """The browser beside a session: Chromium on the page plus the monitor reading it back."""

    def __init__(self, http_url: str, quic_port: int, clock: Any) -> None:
        self.driver = BrowserDriver(http_url, quic_port)
        self.monitor = BrowserMonitor(http_url, clock)
        self.clock = clock

    async def start(self) -> None:
        """Launch Chromium on the page and wait (up to :data:`READY_TIMEOUT_S`) until every
        one of its clients is open, so a fault timeline starting now finds both sides ready."""
        await self.driver.start()
        self.monitor.start()
        deadline = self.clock() + READY_TIMEOUT_S
        while self.clock() < deadline:
            latest = self.monitor.latest
            if latest and all(client["state"] == "open" for client in latest.values()):
                return
            await asyncio.sleep(SAMPLE_INTERVAL_S)
        log.warning("browser clients not all open after %g s: %s", READY_TIMEOUT_S,
                    {name: client["state"] for name, client in self.monitor.latest.items()})

    async def stop(self) -> None:
        try:
            await self.monitor.stop()
        finally:
            await self.driver.stop()

    async def settle(self, published: int, timeout: float) -> bool:
        """Wait until the browser's clients have everything published (or gave up)."""
        deadline = self.clock() + timeout
        while self.clock() < deadline:
            if self.monitor.caught_up(published):
                return True
            await asyncio.sleep(SAMPLE_INTERVAL_S)
        return False

    def report(self, published: int, faults: list[dict[str, Any]], origin: float = 0.0) -> dict[str, Any]:
        """The report's ``"browser"`` section: the page's transports with rtplay's fields, and
        per fault the browser's detect / recover times beside rtplay's."""
        entries = report_entries(self.monitor.latest, published)
        per_fault = []
        for fault in faults:
            name = fault.get("transport")
            if name not in entries or fault.get("start_s") is None:
                continue
            start = float(fault["start_s"]) + origin
            end = start if fault.get("end_s") is None else float(fault["end_s"]) + origin
            per_fault.append(
                {"fault": fault["fault"], "transport": name, "start_s": fault["start_s"], "end_s": fault["end_s"]}
                | recovery(self.monitor.samples, name, start, end,
                           self.monitor.latest[name].get("events"), self.monitor.wall_offset)
            )
        return {"transports": entries, "faults": per_fault, "resolution_s": RESOLUTION_S}


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}s"


def side_by_side(report: dict[str, Any]) -> list[dict[str, Any]]:
    """Per fault and transport: rtplay's client and the browser's, what each decided and how
    fast; ``differs`` names what is not the same (final state, or noticing at all)."""
    rtplay_final = {name: entry["state"] for name, entry in report["transports"].items()}
    browser = {(f["fault"], f["transport"], f["start_s"]): f for f in report["browser"]["faults"]}
    rows = []
    for fault in report["faults"]:
        other = browser.get((fault["fault"], fault["transport"], fault["start_s"]))
        if other is None:
            continue
        ours = "failed" if fault.get("failed") else rtplay_final.get(fault["transport"], "?")
        differs = []
        if ours != other["final_state"]:
            differs.append("final state")
        if (fault["time_to_detect_s"] is None) != (other["time_to_detect_s"] is None):
            differs.append("noticed")
        rows.append({
            "fault": fault["fault"], "transport": fault["transport"],
            "rtplay": {"detect_s": fault["time_to_detect_s"], "recover_s": fault["time_to_recover_s"], "final": ours},
            "browser": {"detect_s": other["time_to_detect_s"], "recover_s": other["time_to_recover_s"],
                        "final": other["final_state"]},
            "differs": differs,
        })
    return rows


def render_browser(report: dict[str, Any], render_table: Any) -> str:
    """The browser's table (as rtplay's) and the side-by-side per fault, for the terminal."""
    section = report["browser"]
    lines = ["", "the browser (headless Chromium on the page), same columns:"]
    lines.append(render_table({"transports": section["transports"], "faults": [],
                               "published": report["published"], "duration_s": report["duration_s"]}))
    rows = side_by_side(report)
    if rows:
        lines += ["", f"per fault: rtplay client vs browser (browser times ±{section['resolution_s']:g}s)"]
        lines.append(f"  {'fault':<28} {'transport':<9} {'rtplay detect/recover/final':<30} browser detect/recover/final")
        for row in rows:
            r, b = row["rtplay"], row["browser"]
            ours = f"{_seconds(r['detect_s'])} / {_seconds(r['recover_s'])} / {r['final']}"
            theirs = f"{_seconds(b['detect_s'])} / {_seconds(b['recover_s'])} / {b['final']}"
            mark = f"  DIFFERS: {', '.join(row['differs'])}" if row["differs"] else ""
            lines.append(f"  {row['fault']:<28} {row['transport']:<9} {ours:<30} {theirs}{mark}")
    return "\n".join(lines)
