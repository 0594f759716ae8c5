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

#: How often the browser's report is read back (the page posts every 250 ms).
SAMPLE_INTERVAL_S = 0.25

#: Samples kept per run for recovery figures: ~25 minutes at 4 per second.
MAX_SAMPLES = 6000


class BrowserUnavailable(RuntimeError):
    """Playwright or Chromium is missing; the message says what to install."""


def chromium_path() -> str:
    """The Chromium executable to drive."""
    path = os.environ.get("RTPLAY_CHROMIUM") or DEFAULT_CHROMIUM
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
        except BaseException:
            await self.stop()
            raise
        log.info("headless Chromium on %s/ (loopback-only host: %s)", self.http_url, loopback)

    async def stop(self) -> None:
        """Close the browser and remove its profile (safe to call twice)."""
        context, self._context = self._context, None
        playwright, self._playwright = self._playwright, None
        try:
            if context is not None:
                await context.close()
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
    # As rtplay's: what never arrived below the highest seen, plus what was published beyond
    # it while subscribed. A client that gave up stopped subscribing when it failed.
    lost = missing if failed else missing + max(0, published - highest)
    return {
        "delivered": stats["delivered"],
        "lost": lost,
        "lost_to_reset": stats["lost_to_reset"],
        "duplicates": stats["duplicates"],
        "out_of_order": stats["out_of_order"],
        "latency_ms": stats["latency_ms"],
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


def recovery(samples: list[Sample], transport: str, start: float, end: float) -> dict[str, Any]:
    """What the browser's client of ``transport`` did about a fault active over [start, end]
    (monotonic seconds), from the samples: when it noticed (left ``open``), when it got the
    first message after the fault ended, and how it ended up."""
    detect = recover = None
    before = None
    final = "unknown"
    for sample in samples:
        state_count = sample.clients.get(transport)
        if state_count is None:
            continue
        state, count = state_count
        final = state
        if sample.at < start:
            before = count
            continue
        if detect is None and state != "open" and sample.at <= max(end, start) + 30:
            detect = round(sample.at - start, 3)
        if sample.at >= end and recover is None and before is not None and count > before and state == "open":
            recover = round(sample.at - end, 3)
        if sample.at < end:
            before = count
    return {"time_to_detect_s": detect, "time_to_recover_s": recover, "final_state": final}


class BrowserMonitor:
    """Reads the browser's report every :data:`SAMPLE_INTERVAL_S` while a run goes on."""

    def __init__(self, http_url: str, clock: Any) -> None:
        self.http_url = http_url
        self.clock = clock
        self.samples: list[Sample] = []
        self.latest: dict[str, Any] = {}
        """The newest page's clients, as it reported them."""
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
