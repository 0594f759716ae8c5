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
import urllib.parse
from collections.abc import Callable, Mapping
from typing import Any

import httpx

from rtplay.engine.browser_figures import (
    RESOLUTION_S,
    Sample,
    next_starts,
    primary_counts,
    recovery,
    render_browser,
    report_entries,
    side_by_side,
)
from rtplay.model.browser_journal import BrowserAccounts

__all__ = ["BrowserDriver", "BrowserMonitor", "BrowserSide", "BrowserUnavailable", "Sample", "page_query",
           "recovery", "render_browser", "report_entries", "retry_policies", "side_by_side"]

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

#: How long the opened page may take to run its script before it is reloaded once.
PAGE_READY_S = 8.0

#: Failed requests and console errors kept for the warning of a page whose script did not run.
MAX_TROUBLES = 8

#: After launch, how long the page's clients get to open before a run goes on without them.
READY_TIMEOUT_S = 10.0

#: Grace for Chromium to close its page and profile before its driver is stopped.
CLOSE_TIMEOUT_S = 10.0

#: How often the browser's report is read back (the page posts every 250 ms).
SAMPLE_INTERVAL_S = 0.25

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


def retry_policies(clients: Mapping[str, object]) -> dict[str, str]:
    """Each client's retry policy as the page reads it (the ``--retry`` grammar's canonical
    text): a reconnecting client's policy spec, and poll's interval, at which it keeps polling
    through errors (``fixed:S``). A client given a policy object rather than a spec is left
    out: the page then runs its transport's default."""
    from rtplay.clients.core import ReconnectingClient
    from rtplay.clients.poll import PollClient

    out: dict[str, str] = {}
    for name, client in clients.items():
        if isinstance(client, ReconnectingClient) and client.retry_spec is not None:
            out[name] = str(client.retry_spec)
        elif isinstance(client, PollClient):
            out[name] = f"fixed:{client.interval:g}"
    return out


def page_query(policies: Mapping[str, str], seed: int | None) -> str:
    """The page's address query (``servers/static/retry.js``) that makes its clients retry as
    rtplay's do: ``policies`` per transport (:func:`retry_policies`) and, when the session's
    clients draw from seeded portable streams (``SessionConfig.retry_seed``), the same seed."""
    params = [(f"retry.{name}", text) for name, text in policies.items()]
    if seed is not None:
        params.insert(0, ("seed", str(seed)))
    return urllib.parse.urlencode(params)



class LoadTroubles:
    """What went wrong while the page loaded, for the warning of a page whose script did not
    run: requests that failed (a script of the page not loaded) and console errors (the page's
    own exceptions are logged as they happen)."""

    def __init__(self, page: Any) -> None:
        self.page = page
        self.seen: list[str] = []
        page.on("requestfailed", self._failed)
        page.on("console", self._console)

    def _failed(self, request: Any) -> None:
        if len(self.seen) < MAX_TROUBLES:
            self.seen.append(f"{request.url} failed: {request.failure}")

    def _console(self, message: Any) -> None:
        if message.type == "error" and len(self.seen) < MAX_TROUBLES:
            self.seen.append(f"console: {message.text[:200]}")

    def say(self) -> str:
        return "; ".join(self.seen) or "no request failed, no console error"

    def clear(self) -> None:
        self.seen.clear()

    def stop(self) -> None:
        self.page.remove_listener("requestfailed", self._failed)
        self.page.remove_listener("console", self._console)

class BrowserDriver:
    """One headless Chromium showing the page; :meth:`start` then :meth:`stop` (always)."""

    def __init__(self, http_url: str, quic_port: int, query: str = "") -> None:
        self.http_url = http_url
        self.quic_port = quic_port
        self.query = query
        """The page's address query (:func:`page_query`: its retry policies and seed)."""
        self.page: Any = None
        """The Playwright page (for tests: ``await driver.page.evaluate(...)``)."""
        self._playwright: Any = None
        self._context: Any = None
        self._profile: tempfile.TemporaryDirectory[str] | None = None

    async def start(self) -> None:
        """Launch Chromium on the page; clean up whatever started if anything fails."""
        try:
            from playwright.async_api import TimeoutError as PlaywrightTimeout
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
                troubles = LoadTroubles(self.page)
                await self.page.goto(self.http_url + "/" + (f"?{self.query}" if self.query else ""))
                await self._page_ready(PlaywrightTimeout, troubles)
        except TimeoutError:
            await self.stop()
            raise BrowserUnavailable(f"Chromium did not show the page within {LAUNCH_TIMEOUT_S:g} s") from None
        except BaseException:
            await self.stop()
            raise
        log.info("headless Chromium on %s/ (loopback-only host: %s)", self.http_url, loopback)

    async def _page_ready(self, timeout_error: type[Exception], troubles: LoadTroubles) -> None:
        """Wait for the page's script to set ``window.rtplay`` (everything that drives the page
        goes through it); reload once if it has not within :data:`PAGE_READY_S`. On a loaded
        machine a page now and then came up "loaded" without it (a script of the page not
        run), and stayed so."""
        assert self.page is not None
        try:
            for attempt in (1, 2):
                try:
                    await self.page.wait_for_function("window.rtplay !== undefined", timeout=PAGE_READY_S * 1000)
                    return
                except timeout_error:
                    if attempt == 2:
                        raise TimeoutError from None
                    log.warning("browser page: its script has not run after %g s (%s); reloading it",
                                PAGE_READY_S, troubles.say())
                    troubles.clear()
                    await self.page.reload()
        finally:
            troubles.stop()

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
            profile, self._profile = self._profile, None
            if profile is not None:
                await remove_profile(profile)


#: How long a closed Chromium's profile may take to come free (see :func:`remove_profile`).
PROFILE_FREE_S = 2.0


async def remove_profile(profile: tempfile.TemporaryDirectory[str]) -> None:
    """Remove a closed Chromium's profile. Its helper processes can still be writing there for
    a moment after the browser has gone (on a busy machine, ``Directory not empty:
    'Default'``): try again until :data:`PROFILE_FREE_S` has passed, then remove what can be
    removed and say what was left."""
    deadline = time.monotonic() + PROFILE_FREE_S
    while True:
        try:
            profile.cleanup()
            return
        except OSError as exc:
            if time.monotonic() > deadline:
                shutil.rmtree(profile.name, ignore_errors=True)
                log.warning("Chromium's profile %s could not be removed in full: %s", profile.name, exc)
                return
            await asyncio.sleep(0.05)


async def fetch_reports(http: httpx.AsyncClient, http_url: str) -> list[dict[str, Any]]:
    """Every page's latest report, as the server keeps them (newest last)."""
    response = await http.get(f"{http_url}/browser/report")
    response.raise_for_status()
    pages = response.json().get("pages", [])
    return pages if isinstance(pages, list) else []


def page_channels() -> tuple[dict[str, tuple[str, ...]], dict[str, tuple[str, ...]]]:
    """(channels, live-only channels) per transport, as rtplay's own clients have them: the
    page runs the same channels, so the same accounting applies."""
    from rtplay.clients.base import Client
    from rtplay.clients.longpoll import LongPollClient
    from rtplay.clients.poll import PollClient
    from rtplay.clients.rtc import RTCClient
    from rtplay.clients.sse import SSEClient
    from rtplay.clients.ws import WebSocketClient
    from rtplay.clients.wt import WebTransportClient

    classes: dict[str, type[Client]] = {"poll": PollClient, "longpoll": LongPollClient, "sse": SSEClient, "ws": WebSocketClient,
               "wt": WebTransportClient, "rtc": RTCClient}
    return ({n: tuple(c.channels) for n, c in classes.items()},
            {n: tuple(c.unreliable_channels) for n, c in classes.items()})


#: Transports whose page client opens only with its first answer: a long-poll held while
#: publishing is paused answers with the first message (rtplay's own waits for none of them).
OPENS_WITH_DATA = frozenset({"longpoll"})


class BrowserMonitor:
    """Reads the browser's report and journal every :data:`SAMPLE_INTERVAL_S` while a run goes
    on, and accounts the journal with rtplay's model (:attr:`accounts`)."""

    def __init__(self, http_url: str, clock: Callable[[], float]) -> None:
        self.http_url = http_url
        self.clock = clock
        self.samples: list[Sample] = []
        self.latest: dict[str, Any] = {}
        """The newest page's clients, as it reported them."""
        self.page: str | None = None
        """The newest page's id (a page that reloads is a new one: its accounts start over)."""
        self.start_seq = 0
        """The hub's newest seq when that page opened."""
        self.accounts = BrowserAccounts(*page_channels())
        self._journal_next = 0
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
        if not pages:
            return
        newest = pages[-1]
        if newest["page"] != self.page:
            self.page, self._journal_next = newest["page"], 0
            self.accounts = BrowserAccounts(*page_channels())
            self.start_seq = int(newest.get("start", 0))
        await self._read_journal(http)
        self.latest = newest["clients"]
        if len(self.samples) < MAX_SAMPLES:
            self.samples.append(Sample(self.clock(), primary_counts(self.latest)))

    async def _read_journal(self, http: httpx.AsyncClient) -> None:
        while True:
            response = await http.get(f"{self.http_url}/browser/journal",
                                      params={"page": self.page or "", "from": str(self._journal_next)})
            response.raise_for_status()
            body = response.json()
            self.accounts.missed(int(body["missed"]))
            self.accounts.feed(body["entries"])
            self._journal_next = int(body["next"])
            if not body["entries"]:
                return

    async def _run(self) -> None:
        async with httpx.AsyncClient(trust_env=False, timeout=2.0) as http:
            while True:
                try:
                    await self.read_once(http)
                except (httpx.HTTPError, ValueError, TypeError, KeyError) as exc:  # an outage fault, say
                    log.debug("browser report not read: %s", exc)
                await asyncio.sleep(SAMPLE_INTERVAL_S)

    def caught_up(self, published: int) -> bool:
        """Whether every browser client still running has its first channel at ``published``."""
        if not self.latest:
            return False
        for name, client in self.latest.items():
            if client["state"] != "failed" and self.accounts.client(name).cursor < published:
                return False
        return True

    def entries(self, published: int, final: bool = False) -> dict[str, Any]:
        """The newest page's transports as report entries (see :func:`report_entries`)."""
        return report_entries(self.latest, self.accounts, published, final=final)


class BrowserSide:
    """The browser beside a session: Chromium on the page plus the monitor reading it back."""

    def __init__(self, http_url: str, quic_port: int, clock: Callable[[], float], query: str = "") -> None:
        self.driver = BrowserDriver(http_url, quic_port, query)
        self.monitor = BrowserMonitor(http_url, clock)
        self.clock = clock

    async def start(self) -> None:
        """Launch Chromium on the page and wait (up to :data:`READY_TIMEOUT_S`) until its
        clients are open (all but :data:`OPENS_WITH_DATA`, which cannot before a message), so
        publishing and a fault timeline starting now find both sides ready."""
        await self.driver.start()
        self.monitor.start()
        deadline = self.clock() + READY_TIMEOUT_S
        while self.clock() < deadline:
            latest = self.monitor.latest
            if latest and all(c["state"] == "open" for n, c in latest.items() if n not in OPENS_WITH_DATA):
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
        """Wait until the browser's clients have everything published (or gave up), and the
        journal that says so has been read."""
        deadline = self.clock() + timeout
        while self.clock() < deadline:
            if self.monitor.caught_up(published):
                return True
            await asyncio.sleep(SAMPLE_INTERVAL_S)
        return False

    def report(self, published: int, faults: list[dict[str, Any]], origin: float = 0.0) -> dict[str, Any]:
        """The report's ``"browser"`` section: the page's transports with rtplay's fields
        (counted by rtplay's model from the page's journal), and per fault the browser's
        detect / recover times beside rtplay's (a page's event belongs to the fault that owns
        it: the latest one on its transport that started before it)."""
        entries = self.monitor.entries(published, final=True)
        per_fault = []
        for fault, until in zip(faults, next_starts(faults), strict=False):
            name = fault.get("transport")
            if name not in entries or fault.get("start_s") is None:
                continue
            start = float(fault["start_s"]) + origin
            end = start if fault.get("end_s") is None else float(fault["end_s"]) + origin
            per_fault.append(
                {"fault": fault["fault"], "transport": name, "start_s": fault["start_s"], "end_s": fault["end_s"]}
                | recovery(self.monitor.samples, name, start, end, self.monitor.latest[name].get("events"),
                           self.monitor.wall_offset, None if until is None else until + origin)
            )
        section: dict[str, Any] = {"transports": entries, "faults": per_fault, "resolution_s": RESOLUTION_S,
                                   "start_seq": self.monitor.start_seq}
        if self.monitor.accounts.gaps:
            section["journal_gaps"] = self.monitor.accounts.gaps  # figures miss what these said
        return section
