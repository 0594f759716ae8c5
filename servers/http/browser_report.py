"""``POST /browser/report`` and ``GET /browser/report``: what the browser page's clients saw.

The page at ``/`` runs one client per transport with the browser's own APIs and posts its
figures here every 250 ms; rtplay (the playground, ``rtplay run --browser``) reads them back
to show the browser's decisions beside its own clients'. A report is validated field by
field (:func:`parse_report`): bad input is answered 400 with the reason and changes nothing.
Reports are kept per page, the newest :data:`MAX_PAGES` only, so a forgotten tab or a
runaway script cannot grow the server.

Only the page this server served may report (:func:`report_refusal`): the server draws a
secret per start (:attr:`BrowserReports.key`), hands it to its own page in ``/page/config``
(no CORS there, so another origin cannot read it), and the page sends it back in the
:data:`REPORT_KEY_HEADER` header; a JSON content type is required (a form or ``text/plain``
"simple" request from another origin is refused before its body is read) and an ``Origin``,
when sent, must be the server itself (``Origin: null`` included). Figures must lie within
what the server published (:func:`check_within`). Neither endpoint has CORS: a page of
another origin cannot read the page ids and user agents of ``GET /browser/report``.
"""

from __future__ import annotations

import hmac
import json
import re
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web

from servers.http.browser_journal import Journal, JournalError, parse_journal

#: Pages whose latest report is kept: a playground drives one headless browser, a user may
#: open a few tabs; beyond this the longest-silent page is forgotten.
MAX_PAGES = 8

#: A report's size: six clients of ~600 bytes each plus their last log lines fit in 16 KiB,
#: and up to 1,000 journal entries of ~40 bytes; 128 KiB leaves room without letting a page
#: post megabytes four times a second.
MAX_REPORT_BYTES = 128 * 1024

#: Clients one report may hold (the page runs one per transport: six).
MAX_CLIENTS = 8

#: Channels per client (wt and rtc have two).
MAX_CHANNELS = 4

#: State-change events per client (the page keeps its newest 32).
MAX_EVENTS = 32
EVENT_KINDS = frozenset({"down", "back"})

#: Log lines per client kept from a report, and their length.
MAX_LOG_LINES = 10
MAX_LOG_CHARS = 200

#: Largest number a report may hold: wall-clock milliseconds (1.8e12 today) fit for centuries.
MAX_NUMBER = 1e13

#: The header carrying the page's report key (a custom header: a cross-origin page would need
#: a preflight, which is never granted).
REPORT_KEY_HEADER = "X-Rtplay-Report-Key"

#: Times a message may be counted as a duplicate: a duplicate fault doubles each message once,
#: a replay after a reconnect may repeat a few; four is generous, 10^30 is a forgery.
MAX_DUPLICATES_PER_MESSAGE = 4

STATES = frozenset({"connecting", "open", "retrying", "failed", "stopped"})
COUNTS = ("delivered", "missing", "highest", "lost_to_reset", "duplicates", "out_of_order")
PERCENTILES = ("p50", "p95", "p99", "max")
_NAME = re.compile(r"[a-z][a-z0-9_-]{0,15}\Z")
_PAGE_ID = re.compile(r"[A-Za-z0-9_-]{1,32}\Z")


class ReportError(ValueError):
    """A report that is not what the page sends; the message says where."""


def _count(value: object, where: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ReportError(f"{where} must be a non-negative integer")
    return value


def _number(value: object, where: str) -> float | None:
    if value is None:
        return None
    if not isinstance(value, int | float) or isinstance(value, bool) or not 0 <= value < MAX_NUMBER:
        raise ReportError(f"{where} must be a non-negative number or null")
    return float(value)


def _object(value: object, where: str, limit: int) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ReportError(f"{where} must be an object")
    if len(value) > limit:
        raise ReportError(f"{where} has more than {limit} entries")
    for key in value:
        if not _NAME.match(key):
            raise ReportError(f"{where}: bad name {key[:20]!r}")
    return value


def _channel(raw: object, where: str) -> dict[str, Any]:
    data = _object(raw, where, 16)
    out: dict[str, Any] = {key: _count(data.get(key), f"{where}.{key}") for key in COUNTS}
    latency = data.get("latency_ms")
    if not isinstance(latency, dict):
        raise ReportError(f"{where}.latency_ms must be an object")
    out["latency_ms"] = {p: _number(latency.get(p), f"{where}.latency_ms.{p}") for p in PERCENTILES}
    return out


def _event(raw: object, where: str) -> list[Any]:
    """``[kind, wall-clock ms]``: the client left ``open`` (down) or got its first new message
    after that (back)."""
    if not isinstance(raw, list) or len(raw) != 2 or raw[0] not in EVENT_KINDS:
        raise ReportError(f"{where} entries must be [\"down\" | \"back\", ms]")
    return [raw[0], _number(raw[1], where)]


def _client(raw: object, where: str) -> dict[str, Any]:
    data = _object(raw, where, 16)
    state = data.get("state")
    if state not in STATES:
        raise ReportError(f"{where}.state must be one of {sorted(STATES)}")
    channels = _object(data.get("channels"), f"{where}.channels", MAX_CHANNELS)
    if not channels:
        raise ReportError(f"{where}.channels is empty")
    log = data.get("log", [])
    if not isinstance(log, list) or not all(isinstance(line, str) for line in log):
        raise ReportError(f"{where}.log must be a list of strings")
    out: dict[str, Any] = {
        "state": state,
        "connects": _count(data.get("connects"), f"{where}.connects"),
        "reconnects": _count(data.get("reconnects"), f"{where}.reconnects"),
        "downtime_s": _number(data.get("downtime_s"), f"{where}.downtime_s") or 0.0,
        "channels": {name: _channel(c, f"{where}.channels.{name}") for name, c in channels.items()},
        "log": [line[:MAX_LOG_CHARS] for line in log[-MAX_LOG_LINES:]],
    }
    events = data.get("events", [])
    if not isinstance(events, list) or len(events) > MAX_EVENTS:
        raise ReportError(f"{where}.events must be a list of at most {MAX_EVENTS}")
    out["events"] = [_event(e, f"{where}.events") for e in events]
    reason = data.get("failed_reason")
    if isinstance(reason, str):
        out["failed_reason"] = reason[:MAX_LOG_CHARS]
    return out


@dataclass(frozen=True, slots=True)
class BrowserReport:
    """One page's latest figures."""

    page: str
    agent: str
    clients: dict[str, dict[str, Any]]
    start: int = 0
    """The hub's newest seq when the page opened (its clients start after it)."""
    journal: tuple[int, list[list[Any]]] = (0, [])
    """(index of the first, entries) of what the page received (:mod:`servers.http.browser_journal`)."""


def parse_report(body: bytes) -> BrowserReport:
    """Validate a report body; raise :class:`ReportError` saying what is wrong."""
    if len(body) > MAX_REPORT_BYTES:
        raise ReportError(f"report larger than {MAX_REPORT_BYTES} bytes")
    try:
        payload = json.loads(body)
    except (ValueError, RecursionError):
        raise ReportError("report is not JSON") from None
    if not isinstance(payload, dict):
        raise ReportError("report must be an object")
    page = payload.get("page")
    if not isinstance(page, str) or not _PAGE_ID.match(page):
        raise ReportError("page must be an id of 1-32 letters, digits, - or _")
    agent = payload.get("agent", "")
    if not isinstance(agent, str):
        raise ReportError("agent must be a string")
    clients = _object(payload.get("clients"), "clients", MAX_CLIENTS)
    parsed = {n: _client(c, f"clients.{n}") for n, c in clients.items()}
    start = _count(payload.get("start", 0), "start")
    try:
        journal = parse_journal(payload.get("journal", {"from": 0, "entries": []}), set(parsed))
    except JournalError as exc:
        raise ReportError(str(exc)) from None
    return BrowserReport(page, agent[:MAX_LOG_CHARS], parsed, start, journal)


def check_within(report: BrowserReport, published: int) -> None:
    """Raise :class:`ReportError` when a figure of ``report`` exceeds what could have happened
    with ``published`` messages sent so far (a forged "delivered 10^30")."""
    for name, client in report.clients.items():
        for channel, figures in client["channels"].items():
            for key in COUNTS:
                bound = published * (MAX_DUPLICATES_PER_MESSAGE if key == "duplicates" else 1)
                if figures[key] > bound:
                    raise ReportError(f"clients.{name}.channels.{channel}.{key} = {str(figures[key])[:40]} "
                                      f"exceeds the {published} messages published")


def report_refusal(request: web.Request, key: str) -> tuple[int, str] | None:
    """Why ``request`` may not report (a status and the reason), or None for the server's own page."""
    if request.content_type != "application/json":
        return 415, "Content-Type must be application/json"
    origin = request.headers.get("Origin")
    if origin is not None and urlsplit(origin).netloc != request.host:
        return 403, f"reports from origin {origin[:80]!r} are refused"
    given = request.headers.get(REPORT_KEY_HEADER, "")
    if not hmac.compare_digest(given.encode(), key.encode()):
        return 403, f"only the page this server served may report ({REPORT_KEY_HEADER} header)"
    return None


class BrowserReports:
    """The latest report of each page, newest :data:`MAX_PAGES` pages (clock passed in)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self.key = secrets.token_urlsafe(24)
        """The per-start secret the server's own page reports with (see :func:`report_refusal`)."""
        self._pages: OrderedDict[str, tuple[float, BrowserReport]] = OrderedDict()
        self._journals: dict[str, Journal] = {}

    def add(self, report: BrowserReport) -> None:
        self._pages.pop(report.page, None)
        self._pages[report.page] = (self._clock(), report)
        self._journals.setdefault(report.page, Journal()).add(*report.journal)
        while len(self._pages) > MAX_PAGES:
            gone, _ = self._pages.popitem(last=False)
            self._journals.pop(gone, None)

    def journal(self, page: str, start: int) -> dict[str, Any] | None:
        """A page's journal from index ``start`` (None: no such page)."""
        journal = self._journals.get(page)
        return None if journal is None else journal.read(start)

    def to_json(self) -> dict[str, Any]:
        """Every kept page, most recently heard last, with how old its report is."""
        now = self._clock()
        return {
            "pages": [
                {"page": r.page, "agent": r.agent, "age_s": round(now - at, 3), "start": r.start,
                 "clients": r.clients}
                for at, r in self._pages.values()
            ]
        }


def install(reports: BrowserReports, published: Callable[[], int]) -> Callable[[web.Application], None]:
    """An app hook adding ``POST``/``GET /browser/report`` (the store outlives app restarts);
    ``published()`` is how many messages the server has published so far."""

    async def post(request: web.Request) -> web.Response:
        if (refusal := report_refusal(request, reports.key)) is not None:
            status, reason = refusal
            return web.json_response({"error": reason}, status=status)
        if request.content_length is not None and request.content_length > MAX_REPORT_BYTES:
            return web.json_response({"error": f"report larger than {MAX_REPORT_BYTES} bytes"}, status=400)
        try:
            report = parse_report(await request.read())
            check_within(report, published())
            reports.add(report)
        except ReportError as exc:
            return web.json_response({"error": str(exc)}, status=400)
        except web.HTTPRequestEntityTooLarge:
            return web.json_response({"error": f"report larger than {MAX_REPORT_BYTES} bytes"}, status=400)
        return web.Response(status=204)

    async def get(request: web.Request) -> web.Response:
        return web.json_response(reports.to_json())

    async def get_journal(request: web.Request) -> web.Response:
        page, start = request.query.get("page", ""), request.query.get("from", "0")
        if not start.isdigit() or len(start) > 15:
            return web.json_response({"error": "from must be a non-negative integer"}, status=400)
        journal = reports.journal(page, int(start))
        if journal is None:
            return web.json_response({"error": f"no page {page[:40]!r}"}, status=404)
        return web.json_response(journal)

    def hook(app: web.Application) -> None:
        app.router.add_post("/browser/report", post)
        app.router.add_get("/browser/report", get)
        app.router.add_get("/browser/journal", get_journal)

    return hook
