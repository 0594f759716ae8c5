"""Browser rows in the playground: what headless Chromium's clients do, beside rtplay's panes.

``rtplay --browser`` (or the palette's "Browser: start / stop") runs Chromium on the server's
page (:mod:`rtplay.engine.browser`); :class:`BrowserRows` shows one row per transport of the page —
state, delivered, lost, reset, dup, p50, reconnects and its newest log line — so one fault
shows both decisions at once: rtplay's client in its pane, the browser's in its row.
"""

from __future__ import annotations

import logging
from typing import Any

from rich.table import Table
from rich.text import Text
from textual.widgets import Static

from rtplay.engine.browser import BrowserSide, BrowserUnavailable, page_query, retry_policies

log = logging.getLogger(__name__)

#: How often the rows repaint (the page reports every 250 ms).
REFRESH_S = 0.5

STATE_STYLE = {"open": "green", "failed": "bold red", "retrying": "yellow", "connecting": "yellow"}


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}" if value < 100 else f"{value:.0f}"


def browser_table(clients: dict[str, Any], entries: dict[str, Any], status: str) -> Table:
    """The rows for the page's clients (pure: from their report and their entries, counted
    by rtplay's model: :meth:`rtplay.engine.browser.BrowserMonitor.entries`)."""
    table = Table(title=f"browser (headless Chromium) — {status}", expand=True, box=None, title_justify="left")
    for column in ("transport", "state", "delivered", "lost", "reset", "dup", "p50 ms", "reconn", "last event"):
        table.add_column(column, justify="left" if column in ("transport", "state", "last event") else "right")
    for name, entry in entries.items():
        log_lines = clients[name].get("log") or [""]
        reset = entry["lost_to_reset"]
        table.add_row(
            name,
            Text(entry["state"], style=STATE_STYLE.get(entry["state"], "")),
            str(entry["delivered"]),
            Text(str(entry["lost"]), style="red" if entry["lost"] else ""),
            Text(f"reset {reset}" if reset else "0", style="yellow" if reset else ""),
            str(entry["duplicates"]),
            _ms(entry["latency_ms"]["p50"]),
            str(entry["reconnects"]),
            log_lines[-1][13:] if len(log_lines[-1]) > 13 else log_lines[-1],  # drop the clock
        )
    return table


class BrowserRows(Static):
    """Starts Chromium on the page and shows its clients' rows until removed."""

    DEFAULT_CSS = "BrowserRows { height: auto; max-height: 10; border-top: solid $accent; }"

    def __init__(self, session: Any) -> None:
        super().__init__("browser: starting Chromium…", id="browser-rows")
        self.session = session
        # The page retries as the panes' clients do (their policies; their draws, when seeded).
        query = page_query(retry_policies(session.clients), session.config.retry_seed)
        self.side = BrowserSide(session.endpoints().http_url, session.endpoints().quic_port, session.clock, query)
        self.status = "starting"
        self.table: Table | None = None
        """The rows last shown (None until the page first reported)."""

    def on_mount(self) -> None:
        self.run_worker(self._start(), name="browser-start", group="browser", exit_on_error=False)
        self.set_interval(REFRESH_S, self.refresh_rows)

    async def _start(self) -> None:
        try:
            await self.side.start()
        except BrowserUnavailable as exc:
            self.status = f"unavailable: {exc}"
        except Exception as exc:  # Chromium failed to launch: say so in the row, keep the app
            log.warning("browser failed to start: %s", exc)
            self.status = f"failed to start: {type(exc).__name__}: {str(exc)[:80]}"
        else:
            self.status = "running"
        self.refresh_rows()

    def refresh_rows(self) -> None:
        clients = self.side.monitor.latest
        if not clients:
            self.update(f"browser: {self.status}")
            return
        self.table = browser_table(clients, self.side.monitor.entries(self.session.published), self.status)
        self.update(self.table)

    async def restart_failed(self, transports: list[str]) -> list[str]:
        """The browser's failed clients among ``transports``, started again (``g``)."""
        return await self.side.driver.restart_failed(transports)

    async def stop(self) -> None:
        """Close Chromium (the app is quitting, or the user stopped the browser)."""
        await self.side.stop()
